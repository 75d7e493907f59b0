"""Hand-written integer networks shared by the gateware tests."""

from gesture_snn.spec.intnet import IntegerNetwork


def small_network(**changes) -> IntegerNetwork:
    """n_in = 3, n_rec = 4, n_out = 3, 4-bit weights, D = 2 (decays in quarters)."""
    params = dict(
        w_in=[[7, -3, 5], [2, 7, -7], [0, 4, 7], [-7, 7, 7]],
        w_rec=[[0, 3, -2, 7], [5, 0, 7, -7], [-4, 7, 0, 2], [7, -7, 3, 0]],
        w_out=[[1, 2, 3, 4], [4, 3, 2, 1], [-1, 2, -3, 4]],
        alpha=[3, 2, 1, 0], rho=[3, 3, 2, 1], adapt_inc=[4, 1, 0, 3], threshold_base=[3, 0, 5, 1],
        alpha_out=[3, 2, 1], decode="mean", weight_bits=4, decay_bits=2,
    )
    params.update(changes)
    return IntegerNetwork(**params)
