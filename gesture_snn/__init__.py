"""gesture-snn: DVS gesture recognition with adaptive spiking recurrent networks, from PyTorch to FPGA.

Layers (docs/architecture.md; tests/test_architecture.py enforces them), lowest first:

    spec                  the contract both sides share: integer network format, memory layout,
                          serial protocol (numpy only)
    software              data / synthetic / fetch / framing, neurons / model / train / evaluate,
                          quantize / golden, host_link: this package's other modules
    hdl (top-level)       Amaranth gateware, simulation and bitstream builds (imports only spec)
    stages                one Python function per pipeline stage
    demo, cli / commands  the whole pipeline; the command line
"""

__version__ = "0.1.0"
