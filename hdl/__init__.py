"""Amaranth gateware for gesture-snn: the spiking neuron array, its simulation harness and build flows.

``hdl`` may import the integer-network specification from ``gesture_snn``; ``gesture_snn``
imports ``hdl`` only from its command-line interface.
"""
