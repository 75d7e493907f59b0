"""gesture-snn: DVS gesture recognition with adaptive spiking recurrent networks, from PyTorch to FPGA.

Pipeline stages, one module (or sub-package) each:

    data / synthetic / fetch  DVS128 Gesture roots (tonic's layout): files, generator, download
    framing               events -> frames (a tonic transform), frame cache, batches
    model / train / evaluate  float SRNN in PyTorch
    quantize / golden     integer network and its golden model (docs/fixed_point.md)
    hdl (top-level package)  Amaranth gateware, simulation and bitstream builds
"""

__version__ = "0.1.0"
