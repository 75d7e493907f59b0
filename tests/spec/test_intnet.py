"""IntegerNetwork: validation, the versioned on-disk format, memory images."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from gesture_snn.spec.errors import UserError
from gesture_snn.spec.intnet import FORMAT_VERSION, IntegerNetwork, IntegerNetworkFormatError, random_network
from gesture_snn.spec.memory import memory_images, weight_memory_words, write_memory_images


def small(**changes) -> IntegerNetwork:
    """n_in = 3, n_rec = 2, n_out = 2, 4-bit weights."""
    params = dict(
        w_in=[[1, -7, 0], [7, 2, -3]], w_rec=[[0, 5], [-5, 1]], w_out=[[1, 2], [-3, 4]],
        alpha=[100, 4095], rho=[0, 17], adapt_inc=[9, 0], threshold_base=[20, 0], alpha_out=[5, 6],
        weight_bits=4, shift_in=2,
    )
    params.update(changes)
    return IntegerNetwork(**params)


# --- construction and validation -----------------------------------------------------------------


def test_derived_sizes_and_accumulator_width():
    net = small()
    assert (net.n_in, net.n_rec, net.n_out) == (3, 2, 2)
    assert net.weight_max == 7
    # |acc| <= (3 * 7) << 2 + (2 * 7) << 0 = 84 + 14 = 98, which needs 8 signed bits
    assert net.acc_bits == 8
    assert net.range_of("acc") == (-128, 127)
    assert net.threshold_bits == 17  # max(AW = 16, VW - 1 = 15) + 1
    assert net.range_of("th") == (0, 2**17 - 1)


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(w_in=[[1, -8, 0], [7, 2, -3]]), r"w_in\[0, 1\] = -8 is outside the 4-bit symmetric weight range \[-7, 7\]"),
        (dict(w_out=[[1, 2], [9, 9]]), r"w_out\[1, 0\] = 9 is outside .* \(2 values out of range\)"),
        (dict(alpha=[100, 4096]), r"alpha\[1\] = 4096 is outside the unsigned 12-bit decay range \[0, 4095\]"),
        (dict(rho=[-1, 0]), r"rho\[0\] = -1"),
        (dict(adapt_inc=[0, 65536]), r"adapt_inc\[1\] = 65536 is outside the unsigned 16-bit adaptation range"),
        (dict(threshold_base=[32768, 0]), r"threshold_base\[0\] = 32768 is outside the threshold range \[0, 2\^\(membrane_bits-1\) - 1\]"),
        (dict(w_rec=[[0, 5, 1], [-5, 1, 1]]), r"w_rec has shape \(2, 3\); expected \(n_rec, n_rec\) = \(2, 2\)"),
        (dict(alpha_out=[1, 2, 3]), r"alpha_out has shape \(3,\); expected \(n_out,\) = \(2,\)"),
        (dict(w_in=[1, 2, 3]), r"w_in must be 2-D"),
        (dict(w_in=np.zeros((2, 0), np.int64)), r"n_in = 0"),
        (dict(w_in=[[1.0, 0, 0], [0, 0, 0]]), r"w_in must hold integers; got dtype float64"),
        (dict(weight_bits=1), r"weight_bits = 1 bits is outside the supported range \[2, 16\]"),
        (dict(decay_bits=0), r"decay_bits = 0"),
        (dict(membrane_bits=33), r"membrane_bits = 33"),
        (dict(readout_bits=33), r"score_bits = 32 is smaller than readout_bits = 33"),
        (dict(shift_in=16), r"shift_in = 16 is outside the supported range \[0, 15\]"),
        (dict(shift_rec=2.0), r"shift_rec must be an integer"),
        (dict(decode="max"), r"decode = 'max'; expected one of 'last', 'mean'"),
    ],
)
def test_validation_names_what_is_wrong(changes, message):
    with pytest.raises(ValueError, match=message):
        small(**changes)


def test_arrays_are_private_read_only_int64_copies():
    w_in = np.array([[1, -7, 0], [7, 2, -3]], np.int8)
    net = small(w_in=w_in)
    w_in[0, 0] = 5
    assert net.w_in[0, 0] == 1 and net.w_in.dtype == np.int64
    with pytest.raises(ValueError):
        net.w_in[0, 0] = 2


def test_equality_and_replace():
    net = small()
    assert net == small()
    assert net != small(shift_rec=1)
    assert net != small(alpha=[100, 4094])
    assert net.replace(decode="mean").decode == "mean"
    with pytest.raises(ValueError, match="adapt_inc"):
        net.replace(adaptation_bits=3)


def test_random_networks_are_valid_and_hit_corners():
    rng = np.random.default_rng(0)
    nets = [random_network(rng, 5, 4, 3, weight_bits=3) for _ in range(50)]
    weights = np.concatenate([n.w_in.ravel() for n in nets])
    assert {-3, 0, 3} <= set(weights.tolist())
    assert {n.decode for n in nets} == {"last", "mean"}


# --- on-disk format ----------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [dict(), dict(weight_bits=16, membrane_bits=32, adaptation_bits=32, readout_bits=40, score_bits=56)])
def test_save_load_round_trip(tmp_path, bits):
    net = random_network(np.random.default_rng(1), 7, 5, 3, **bits).replace(membrane_exp=9, readout_exp=-2)
    net.save(tmp_path / "net")
    loaded = IntegerNetwork.load(tmp_path / "net")
    assert loaded == net
    manifest = json.loads((tmp_path / "net" / "manifest.json").read_text())
    assert manifest["version"] == FORMAT_VERSION
    assert manifest["shape"] == {"n_in": 7, "n_rec": 5, "n_out": 3}
    assert manifest["scales"] == {"membrane_exp": 9, "readout_exp": -2}
    assert manifest["arrays"]["w_in"]["dtype"] == ("int8" if not bits else "int16")


@pytest.fixture
def saved(tmp_path):
    path = small().save(tmp_path / "net")
    return path, json.loads((path / "manifest.json").read_text())


def rewrite_manifest(path, manifest):
    (path / "manifest.json").write_text(json.dumps(manifest))


def replace_array(path, manifest, name, array):
    """Write a new array file and a matching checksum, as a careless tool would."""
    np.save(path / f"{name}.npy", array)
    manifest["arrays"][name]["sha256"] = hashlib.sha256((path / f"{name}.npy").read_bytes()).hexdigest()
    rewrite_manifest(path, manifest)


def test_load_rejects_missing_and_foreign_directories(tmp_path):
    with pytest.raises(IntegerNetworkFormatError, match="manifest.json does not exist"):
        IntegerNetwork.load(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(IntegerNetworkFormatError, match="not valid JSON"):
        IntegerNetwork.load(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "something-else", "version": 1}))
    with pytest.raises(IntegerNetworkFormatError, match="format is 'something-else'"):
        IntegerNetwork.load(tmp_path)


def test_load_rejects_other_versions(saved):
    path, manifest = saved
    manifest["version"] = FORMAT_VERSION + 1
    rewrite_manifest(path, manifest)
    with pytest.raises(IntegerNetworkFormatError, match=f"version {FORMAT_VERSION + 1} is newer .* upgrade"):
        IntegerNetwork.load(path)


def test_load_rejects_changed_array_file(saved):
    path, _ = saved
    data = bytearray((path / "w_rec.npy").read_bytes())
    data[-1] ^= 1
    (path / "w_rec.npy").write_bytes(bytes(data))
    with pytest.raises(IntegerNetworkFormatError, match=r"w_rec.npy: sha256 .* does not match the manifest"):
        IntegerNetwork.load(path)


def test_load_rejects_missing_array(saved):
    path, manifest = saved
    (path / "rho.npy").unlink()
    with pytest.raises(IntegerNetworkFormatError, match="array file 'rho.npy' for rho is missing"):
        IntegerNetwork.load(path)
    del manifest["arrays"]["rho"]
    rewrite_manifest(path, manifest)
    with pytest.raises(IntegerNetworkFormatError, match="no entry for array 'rho'"):
        IntegerNetwork.load(path)


def test_load_rejects_inconsistent_shapes(saved):
    path, manifest = saved
    manifest["shape"]["n_rec"] = 3
    rewrite_manifest(path, manifest)
    with pytest.raises(IntegerNetworkFormatError, match=r"array w_in is declared with shape \[2, 3\]; .* requires \[3, 3\]"):
        IntegerNetwork.load(path)


def test_load_rejects_array_that_disagrees_with_manifest(saved):
    path, manifest = saved
    replace_array(path, manifest, "alpha", np.array([1, 2, 3], np.uint16))
    with pytest.raises(IntegerNetworkFormatError, match=r"alpha.npy: holds uint16 \[3\]; manifest says uint16 \[2\]"):
        IntegerNetwork.load(path)


def test_load_rejects_out_of_range_values(saved):
    path, manifest = saved
    replace_array(path, manifest, "w_out", np.array([[1, 2], [-3, 8]], np.int8))
    with pytest.raises(IntegerNetworkFormatError, match=r"w_out\[1, 1\] = 8 is outside the 4-bit symmetric weight range"):
        IntegerNetwork.load(path)


def test_load_rejects_bad_scalars(saved):
    path, manifest = saved
    manifest["widths"]["decay_bits"] = "12"
    rewrite_manifest(path, manifest)
    with pytest.raises(IntegerNetworkFormatError, match="widths.decay_bits must be an integer"):
        IntegerNetwork.load(path)
    manifest["widths"]["decay_bits"] = 17
    rewrite_manifest(path, manifest)
    with pytest.raises(IntegerNetworkFormatError, match="decay_bits = 17 bits is outside"):
        IntegerNetwork.load(path)


def test_format_errors_are_user_errors():
    assert issubclass(IntegerNetworkFormatError, UserError)
    assert issubclass(IntegerNetworkFormatError, ValueError)


# --- memory images ---------------------------------------------------------------------------------


@pytest.mark.parametrize("lanes, readout_lanes", [(1, None), (3, 2), (5, 1)])
def test_memory_images_unpack_to_the_parameters(lanes, readout_lanes):
    net = random_network(np.random.default_rng(5), 4, 5, 3, weight_bits=5)
    images = memory_images(net, lanes=lanes, readout_lanes=readout_lanes)
    q = readout_lanes or net.n_out
    groups, out_groups = -(-net.n_rec // lanes), -(-net.n_out // q)

    def neuron_rows(image, matrix, columns):
        rows = np.zeros((groups * lanes, columns), np.int64)
        for column in range(columns):
            for g in range(groups):
                rows[g * lanes:(g + 1) * lanes, column] = image.lane_values(column * groups + g)
        assert not rows[net.n_rec:].any()  # padding lanes are zero
        return rows[:net.n_rec]

    np.testing.assert_array_equal(neuron_rows(images["w_in"], net.w_in, net.n_in), net.w_in)
    np.testing.assert_array_equal(neuron_rows(images["w_rec"], net.w_rec, net.n_rec), net.w_rec)
    for name in ("alpha", "rho", "adapt_inc", "threshold_base"):
        np.testing.assert_array_equal(neuron_rows(images[name], None, 1)[:, 0], getattr(net, name))
    w_out = np.array([sum((images["w_out"].lane_values(j * out_groups + h) for h in range(out_groups)), [])[:net.n_out]
                      for j in range(net.n_rec)]).T
    np.testing.assert_array_equal(w_out, net.w_out)
    alpha_out = sum((images["alpha_out"].lane_values(h) for h in range(out_groups)), [])[:net.n_out]
    assert alpha_out == net.alpha_out.tolist()
    assert images["w_in"].width == lanes * net.weight_bits and images["w_in"].depth == net.n_in * groups
    assert images["threshold_base"].lane_bits == net.membrane_bits - 1


def test_memory_word_layout_by_hand():
    # 4-bit weights, 2 lanes: w_in column 0 = (w_in[0, 0], w_in[1, 0]) = (1, 7) -> word 0x71;
    # column 1 = (-7, 2) -> -7 = 0b1001 in lane 0, 2 in lane 1 -> 0x29.
    image = memory_images(small(), lanes=2)["w_in"]
    assert image.words == (0x71, 0x29, 0xD0)  # column 2 = (0, -3): -3 = 0xD in lane 1
    assert image.hex_lines() == ["71", "29", "d0"]


def test_weight_memory_words_by_hand():
    # 4-bit weights, 2 lanes, G = 1: the synaptic memory is the w_in columns (0x71, 0x29, 0xD0 as
    # above) and then the w_rec columns (0, -5) -> 0xB0 and (5, 1) -> 0x15. Readout with 1 lane,
    # H = 2: address j*2 + h holds w_out[h, j]; with 2 lanes address j holds (w_out[0, j], w_out[1, j]).
    assert weight_memory_words(small(), lanes=2, readout_lanes=1) == ([0x71, 0x29, 0xD0, 0xB0, 0x15], [0x1, 0xD, 0x2, 0x4])
    assert weight_memory_words(small(), lanes=2, readout_lanes=2)[1] == [0xD1, 0x42]


@pytest.mark.parametrize("lanes, readout_lanes", [(1, 1), (5, 2), (3, 3)])
def test_weight_memory_words_are_the_weight_images(lanes, readout_lanes):
    net = random_network(np.random.default_rng(6), 4, 15, 3, weight_bits=5)
    synaptic, readout = weight_memory_words(net, lanes=lanes, readout_lanes=readout_lanes)
    images = memory_images(net, lanes=lanes, readout_lanes=readout_lanes)
    assert synaptic == list(images["w_in"].words) + list(images["w_rec"].words)
    assert readout == list(images["w_out"].words)
    groups = -(-net.n_rec // lanes)
    assert len(synaptic) == (net.n_in + net.n_rec) * groups
    assert len(readout) == net.n_rec * -(-net.n_out // readout_lanes)
    with pytest.raises(ValueError, match=r"readout_lanes = 4; expected an integer in \[1, 3\]"):
        weight_memory_words(net, lanes=lanes, readout_lanes=4)


def test_write_memory_images(tmp_path):
    net = small()
    paths = write_memory_images(net, tmp_path, lanes=2)
    layout = json.loads((tmp_path / "memories.json").read_text())
    assert set(paths) == set(layout["memories"])
    images = memory_images(net, lanes=2)
    for name, path in paths.items():
        lines = path.read_text().splitlines()
        assert [int(line, 16) for line in lines] == list(images[name].words)
        assert {len(line) for line in lines} == {-(-images[name].width // 4)}
        assert layout["memories"][name]["depth"] == len(lines)
    with pytest.raises(ValueError, match=r"lanes = 3; expected an integer in \[1, 2\]"):
        memory_images(net, lanes=3)
