"""Amaranth gateware for gesture-snn: the spiking neuron array, its simulation harness and build flows.

``hdl.core.NeuronCore`` is the integer SRNN of docs/fixed_point.md as one stream-in, stream-out
component, built from ``hdl.accumulator``, ``hdl.alif``, ``hdl.spike_list`` and ``hdl.readout``;
``hdl.sim`` simulates it against the golden model. docs/hardware.md describes the architecture.

From the project, ``hdl`` imports only the shared contract ``gesture_snn.spec`` (the integer
network format, memory layout and serial protocol). It does not run the golden model itself: the
comparisons of ``hdl.sim`` and ``hdl.cxxrtl`` take the golden trace from their caller.
"""
