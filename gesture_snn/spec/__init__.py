"""The contract between the software side (``gesture_snn``) and the gateware (``hdl``).

Both sides import this package; it imports only the standard library and numpy (no torch, no
amaranth), so it can be read and used on its own:

    errors    UserError, the exception every stage raises for a problem with the user's input
    files     crash-safe file writes (atomic_write*, WriteError, free-space checks)
    intnet    the integer network format: widths and their defaults, limits, save/load, the
              binary input contract
    memory    the memory images of the neuron core and the lane rules and defaults
    protocol  the host <-> board serial protocol: codes, frames, encoders, reply decoder
"""
