"""Amaranth gateware for gesture-snn: the spiking neuron array, its simulation harness and build flows.

``hdl.core.NeuronCore`` is the integer SRNN of docs/fixed_point.md as one stream-in, stream-out
component, built from ``hdl.accumulator``, ``hdl.alif``, ``hdl.spike_list`` and ``hdl.readout``;
``hdl.sim`` simulates it against the golden model. docs/hardware.md describes the architecture.

``hdl`` may import the integer-network specification from ``gesture_snn``; ``gesture_snn``
imports ``hdl`` only from its command-line interface.
"""
