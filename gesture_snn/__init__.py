"""gesture-snn: DVS gesture recognition with adaptive spiking recurrent networks, from PyTorch to FPGA.

Pipeline stages, one module (or sub-package) each:

    data / synth / fetch  events -> frames           (tonic-layout DVSGesture roots)
    model / train / evaluate  float SRNN in PyTorch
    quantize / golden     integer network and its golden model (docs/fixed_point.md)
    hdl (top-level package)  Amaranth gateware, simulation and bitstream builds
"""

__version__ = "0.1.0"
