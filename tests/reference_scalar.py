"""A deliberately simple scalar implementation of docs/fixed_point.md, the golden model's twin.

Written straight from the spec with plain Python ints and loops, one neuron and one synapse at a
time, and no numpy arithmetic, so that it shares no code and no tricks with
``gesture_snn.golden``. Slow; for small networks in tests only.
"""

from __future__ import annotations


def sat(x: int, n: int) -> int:
    """sat_n: signed saturation to n bits."""
    return min(max(x, -(2 ** (n - 1))), 2 ** (n - 1) - 1)


def usat(x: int, n: int) -> int:
    """usat_n: unsigned saturation to n bits."""
    return min(max(x, 0), 2 ** n - 1)


def decay(x: int, q: int, d: int) -> int:
    """(q * x + 2^(D-1)) >> D with floor (Python's >> on ints is an arithmetic shift)."""
    return (q * x + 2 ** (d - 1)) >> d


def run_scalar(net, x) -> dict:
    """Run ``net`` (an IntegerNetwork) on one sample ``x`` (T lists of n_in 0/1 values).

    Returns {"a", "th", "v", "z", "o", "s": T lists of per-neuron / per-output ints,
    "prediction": int, "saturation": {"a", "v", "o", "s": count}}.
    """
    n_in, n_rec, n_out = net.n_in, net.n_rec, net.n_out
    d = net.decay_bits
    vw, aw, ow, sw = net.membrane_bits, net.adaptation_bits, net.readout_bits, net.score_bits
    w_in = [[int(net.w_in[j, i]) for i in range(n_in)] for j in range(n_rec)]
    w_rec = [[int(net.w_rec[j, k]) for k in range(n_rec)] for j in range(n_rec)]
    w_out = [[int(net.w_out[k, j]) for j in range(n_rec)] for k in range(n_out)]
    alpha = [int(q) for q in net.alpha]
    rho = [int(q) for q in net.rho]
    adapt_inc = [int(c) for c in net.adapt_inc]
    threshold_base = [int(b) for b in net.threshold_base]
    alpha_out = [int(q) for q in net.alpha_out]

    saturation = {"a": 0, "v": 0, "o": 0, "s": 0}

    def count_signed(name, value, bits):
        if value != sat(value, bits):
            saturation[name] += 1
        return sat(value, bits)

    def count_unsigned(name, value, bits):
        if value != usat(value, bits):
            saturation[name] += 1
        return usat(value, bits)

    v = [0] * n_rec
    a = [0] * n_rec
    z = [0] * n_rec
    o = [0] * n_out
    s = [0] * n_out
    trace = {"a": [], "th": [], "v": [], "z": [], "o": [], "s": []}

    for x_t in x:
        x_t = [int(bit) for bit in x_t]
        assert all(bit in (0, 1) for bit in x_t)
        new_v = [0] * n_rec
        new_a = [0] * n_rec
        th = [0] * n_rec
        for j in range(n_rec):
            # 1. adaptation (z is still the spike vector of the previous step)
            new_a[j] = count_unsigned("a", decay(a[j], rho[j], d) + z[j] * adapt_inc[j], aw)
            # 2. threshold
            th[j] = threshold_base[j] + new_a[j]
            # 3. synaptic accumulation, one event at a time
            input_sum = 0
            for i in range(n_in):
                if x_t[i] == 1:
                    input_sum += w_in[j][i]
            recurrent_sum = 0
            for k in range(n_rec):
                if z[k] == 1:
                    recurrent_sum += w_rec[j][k]
            acc = input_sum * 2 ** net.shift_in + recurrent_sum * 2 ** net.shift_rec
            # 4. membrane, subtractive reset with this step's threshold
            new_v[j] = count_signed("v", decay(v[j], alpha[j], d) + acc - z[j] * th[j], vw)
        # 5. spikes replace the old ones only after every neuron has done steps 1-4
        new_z = [1 if new_v[j] > th[j] else 0 for j in range(n_rec)]
        v, a, z = new_v, new_a, new_z
        for k in range(n_out):
            # 6. readout with this step's spikes
            total = decay(o[k], alpha_out[k], d)
            for j in range(n_rec):
                if z[j] == 1:
                    total += w_out[k][j]
            o[k] = count_signed("o", total, ow)
            # 7. score
            if net.decode == "mean":
                s[k] = count_signed("s", s[k] + o[k], sw)
            else:
                s[k] = o[k]
        for name, value in (("a", a), ("th", th), ("v", v), ("z", z), ("o", o), ("s", s)):
            trace[name].append(list(value))

    # argmax with ties to the lowest class index
    prediction = 0
    for k in range(1, n_out):
        if s[k] > s[prediction]:
            prediction = k
    return {**trace, "prediction": prediction, "saturation": saturation}
