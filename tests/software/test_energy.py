"""Energy accounting (gesture_snn/energy.py): every formula against a hand count on a tiny
network, NeuroBench's definitions (against the package when it is installed), JSON output and
bad input."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from gesture_snn import energy as E
from gesture_snn.energy import NetworkShape

# The tiny network: 3 inputs -> 2 recurrent ALIF -> 2 readouts, T = 2, explicit activity:
#   x = [[1, 0, 1], [0, 1, 0]]  (3 input events),  z = [[1, 0], [1, 1]]  (3 spikes, 2 in the last step)
TINY = NetworkShape(n_inputs=3, layers=(2,), recurrent=(True,), n_outputs=2)
X = np.array([[[1, 0, 1], [0, 1, 0]]], dtype=float)
Z = np.array([[[1, 0], [1, 1]]], dtype=float)


@pytest.fixture
def tiny():
    return E.Activity.from_arrays(X, [Z])


def test_activity_from_arrays(tiny):
    assert tiny == E.Activity(n_steps=2, input_events=3, spikes=(3,), final_step_spikes=(2,), binary_inputs=True)


def test_seed_paper_matches_evaluate_and_hand_count(tiny):
    out = E.seed_paper(tiny, TINY)
    # SOPs: 3 input events x 2 + 3 spikes x (2 recurrent + 2 readout) = 18; dense: 2 x (6 + 4 + 4) = 28 MACs
    assert out["snn"]["operations"]["ac"] == 18
    assert out["dense_rnn"]["operations"]["mac"] == 28
    assert out["ratio"] == pytest.approx(28 * 4.6 / (18 * 0.9))
    from gesture_snn.evaluate import Evaluation

    ev = Evaluation(labels=np.zeros(2, np.int64), predictions=np.zeros(2, np.int64), n_classes=2, n_steps=2, loss=None,
                    input_events=6.0, layer_spikes=(6.0,), shape=TINY)
    assert out["snn"]["operations"]["ac"] == ev.sops_per_sample
    assert out["dense_rnn"]["operations"]["mac"] == ev.dense_macs_per_sample
    assert out["ratio"] == pytest.approx(ev.energy_ratio)
    assert E.Activity.from_evaluation(ev) == E.Activity(n_steps=2, input_events=3, spikes=(3,))


def test_neurobench_hand_count(tiny):
    out = E.neurobench(tiny, TINY)
    so = out["synaptic_operations"]
    # Dense: every Linear call, every step: input 3x2, recurrent 2x2, readout 2x2 -> 2 x 14
    assert so["Dense"] == 28
    # Effective ACs: input 3 events x 2; recurrent sees z_{t-1}: only step 1's spike -> 1 x 2; readout 3 x 2
    assert so["Effective_ACs"] == 6 + 2 + 6
    assert so["Effective_MACs"] == 0
    assert out["activation_sparsity"] == pytest.approx(1 - 3 / 4)
    assert out["membrane_updates"] == 4  # bound n * T without a trace
    # float32 weights (6 + 4 + 4) and time constants (tau_m, tau_adp per neuron, tau per output)
    assert out["footprint_bytes"] == 4 * (14 + 4 + 2)
    counts = E.Activity(n_steps=2, input_events=3, spikes=(3,), binary_inputs=False)
    assert E.neurobench(counts, TINY)["synaptic_operations"]["Effective_MACs"] == 6


def test_membrane_updates_and_sparsity_helpers():
    v = np.array([[[0.0, 0.5], [0.0, 0.25], [0.1, 0.25]]])  # T = 3, n = 2
    # step 1: 2; step 2: neuron 1 changed; step 3: neuron 0 changed
    assert E.membrane_updates(v) == 4
    assert E.connection_sparsity([np.array([[0, 1], [2, 0]]), np.zeros(4)]) == 0.75


def test_fair_dense_hand_count(tiny):
    out = E.fair_dense(tiny, TINY)
    snn, dense = out["snn"]["operations"], out["dense_rnn"]["operations"]
    # SNN synaptic additions: input 6 + recurrent (1 replayed spike) 2 + readout 6
    assert snn["synaptic_add"] == 14
    assert snn["neuron_mult"] == 2 * 2 * 2  # T x n x (alpha v, rho a)
    assert snn["neuron_add"] == 2 * 2 * 2 + 2 * 3  # T x n x 2, plus 2 per spike
    assert snn["neuron_compare"] == 4
    assert snn["readout_mult"] == snn["readout_add"] == 4
    # dense: binary input products are additions (T x 3 x 2), recurrent and readout MACs T x (4 + 4)
    assert dense["synaptic_add"] == 12
    assert dense["synaptic_mac_mult"] == dense["synaptic_mac_add"] == 16
    assert dense["neuron_mult"] == dense["neuron_add"] == dense["neuron_compare"] == 4
    e_snn = 0.9 * (14 + 14 + 4 + 4) + 3.7 * (8 + 4)
    e_dense = 0.9 * (12 + 16 + 4 + 4 + 4) + 3.7 * (16 + 4 + 4)
    assert out["snn"]["energy_pj"]["total"] == pytest.approx(e_snn)
    assert out["dense_rnn"]["energy_pj"]["total"] == pytest.approx(e_dense)
    assert out["ratio"] == pytest.approx(e_dense / e_snn)


def test_width_and_read_rules():
    assert E.add_energy_pj(8) == 0.03 and E.add_energy_pj(32) == 0.1 and E.add_energy_pj(4) == 0.03
    assert E.add_energy_pj(16) == pytest.approx(0.03 * (0.1 / 0.03) ** 0.5)
    assert E.add_energy_pj(16, "round_up") == 0.1
    assert E.mult_energy_pj(8, 8) == pytest.approx(0.2) and E.mult_energy_pj(32, 32) == pytest.approx(3.1)
    assert E.mult_energy_pj(16, 16) == pytest.approx(0.2 * (3.1 / 0.2) ** 0.5)
    assert E.mult_energy_pj(16, 12, "round_up") == 3.1 and E.mult_energy_pj(8, 4, "round_up") == 0.2
    assert E.read_energy_pj(64, 8 * 1024) == 10 and E.read_energy_pj(64, 32 * 1024) == 20
    assert E.read_energy_pj(64, 1024 * 1024) == pytest.approx(100)
    assert E.read_energy_pj(8, 100) == pytest.approx(10 / 8)  # one int8 weight: an eighth of a 64-bit read
    assert E.read_energy_pj(64, 80 * 1024, "round_up") == 100
    assert E.read_energy_pj(64, 64 * 1024) == pytest.approx(20 * 2 ** math.log(5, 32))


def test_integer_costs_hand_count(tiny):
    out = E.integer_costs(tiny, TINY)
    w = out["widths"]
    # accumulator: fan-in (3 + 2) x 127 = 635 -> 11 signed bits; readout 2 x 127 = 254 -> 9; dense 3*127 + 2*127*32767
    assert (w["snn_acc_bits"], w["readout_acc_bits"]) == (11, 9)
    assert w["dense_acc_bits"] == (3 * 127 + 2 * 127 * 32767).bit_length() + 1
    ops = out["snn"]["operations"]
    assert ops["synaptic_add"]["count"] == 8 and ops["readout_synaptic_add"]["count"] == 6
    assert ops["synaptic_add"]["pj_each"] == E.add_energy_pj(11)
    assert ops["neuron_decay_mult"]["count"] == 8 and ops["neuron_decay_mult"]["bits"] == [16, 12]
    assert ops["score_add"]["count"] == 4 and ops["score_add"]["bits"] == [32]
    total_ops = sum(o["count"] * o["pj_each"] for o in ops.values())
    assert out["snn"]["energy_pj"]["operations"] == pytest.approx(total_ops)
    mem = out["snn"]["memory"]
    assert mem["weight_read_bits"]["bits"] == 14 * 8  # every synaptic op reads one 8-bit weight
    assert mem["weight_read_bits"]["memory_bytes"] == 14  # 14 weights of 1 byte
    assert mem["neuron_state_read_write_bits"]["bits"] == 2 * 2 * 2 * 33  # T x n x read+write x {v, a, z}
    assert mem["neuron_parameter_read_bits"]["bits"] == 2 * 2 * (12 + 12 + 16 + 15)
    dense = out["dense_rnn"]["operations"]
    assert dense["synaptic_add"]["count"] == 28 and dense["synaptic_mult"]["count"] == 16
    assert dense["synaptic_mult"]["bits"] == [8, 16]
    assert out["dense_rnn"]["memory"]["weight_read_bits"]["bits"] == 28 * 8
    assert out["ratio"] == pytest.approx(out["dense_rnn"]["energy_pj"]["total"] / out["snn"]["energy_pj"]["total"])


def test_gru_hand_count():
    g = E.gru_baseline(E.GRUShape(n_inputs=3, hidden=2, n_outputs=2, n_steps=2))
    ops = g["operations"]
    assert ops["input_add"] == 2 * 3 * 2 * 3 and ops["input_mac"] == 0
    assert ops["recurrent_mac"] == 2 * 3 * 4
    assert ops["bias_add"] == 2 * 12 and ops["gate_add"] == 12 and ops["elementwise_mult"] == 12
    assert ops["elementwise_add"] == 8 and ops["nonlinearity"] == 12
    assert ops["readout_mac"] == 2 * 4 and ops["readout_bias_add"] == 4
    assert g["macs"] == 24 + 8
    assert g["neurobench_dense"] == 2 * (3 * 2 * 5 + 6) + 8
    adds, mults = 36 + 24 + 12 + 8 + 4 + 12, 12 + 12
    assert g["energy_pj"]["fp32"] == pytest.approx(0.9 * adds + 3.7 * mults + 4.6 * 32)
    assert g["parameters"] == 3 * 2 * 5 + 12 + 4 + 2
    last = E.gru_baseline(E.GRUShape(3, 2, 2, 2, readout_every_step=False, bias=False), binary_inputs=False)
    assert last["operations"]["readout_mac"] == 4 and last["operations"]["input_mac"] == 36
    assert last["operations"]["bias_add"] == 0


def test_gateware_matches_cycle_model_and_hand_count(tiny):
    from hdl.core import STEP_OVERHEAD_CYCLES, CycleModel

    assert E.STEP_OVERHEAD_CYCLES == STEP_OVERHEAD_CYCLES
    out = E.gateware(tiny, TINY, lanes=1, readout_lanes=1)
    model = CycleModel(n_in=3, n_rec=2, n_out=2, lanes=1, readout_lanes=1)
    # step 1: E = 2, P = 0, S = 1; step 2: E = 1, P = 1, S = 2 (last step)
    expected = (model.step_cycles(input_events=2, previous_spikes=0, spikes=1)
                + model.step_cycles(input_events=1, previous_spikes=1, spikes=2, last_step=True))
    assert out["cycles_per_sample"] == expected
    mem = out["memory"]
    assert mem["synapses.weights"]["words_read"] == (3 + 1) * 2  # (E + P) x n_rec / L
    assert mem["synapses.weights"]["bits_per_word"] == 8
    assert mem["synapses.sums"]["words_read"] == 8 + 2 * 2  # events, plus the flush of every step
    assert mem["neurons.state"]["words_read"] == mem["neurons.state"]["words_written"] == 4
    assert mem["spikes.indices"]["words_read"] == 1 + 3 and mem["spikes.indices"]["words_written"] == 3
    assert mem["readout_synapses.weights"]["words_read"] == 3 * 2
    assert mem["readout.state"]["words_read"] == 4
    ops = out["operations"]
    assert ops["synaptic_add"]["count"] == 8 and ops["readout_synaptic_add"]["count"] == 6
    assert ops["alif_decay_mult_v"]["count"] == ops["alif_decay_mult_a"]["count"] == 4
    assert out["multiplier_operations_per_step"] == (4 + 4 + 4) / 2
    wide = E.gateware(tiny, TINY, lanes=2, readout_lanes=2)
    assert wide["memory"]["synapses.weights"]["words_read"] == 4
    assert wide["memory"]["synapses.weights"]["bits_per_word"] == 16


def test_integer_widths_are_intnet_defaults():
    from gesture_snn.spec.intnet import WIDTH_DEFAULTS, IntegerNetwork

    defaults = {f.name: f.default for f in dataclasses.fields(IntegerNetwork) if f.name in WIDTH_DEFAULTS}
    assert defaults == E.WIDTH_DEFAULTS


def test_report_is_json_and_renders(tiny):
    report = E.energy_report(tiny, TINY, gru=E.GRUShape(3, 2, 2, 2), lanes=1)
    assert json.loads(json.dumps(report)) == report
    assert set(report) >= {"seed_paper", "neurobench", "fair_dense", "integer", "gru", "gateware"}
    table = E.markdown_table(report)
    assert table.count("\n") == 2 + 7
    two = NetworkShape(n_inputs=3, layers=(2, 2), recurrent=(True, True), n_outputs=2)
    r2 = E.energy_report(E.Activity(n_steps=2, input_events=3, spikes=(3, 1)), two)
    assert "gateware" not in r2 and "one recurrent layer" in r2["gateware_skipped"]
    assert "gateware" not in E.markdown_table(r2)


def test_preset_example_numbers():
    """The worked example of docs/energy.md."""
    shape = NetworkShape(n_inputs=512, layers=(128,), recurrent=(True,), n_outputs=11)
    act = E.Activity(n_steps=160, input_events=0.07 * 512 * 160, spikes=(0.25 * 128 * 160,), final_step_spikes=(32,))
    r = E.energy_report(act, shape, gru=E.GRUShape(512, 128, 11, 160))
    assert r["seed_paper"]["ratio"] == pytest.approx(47.1, abs=0.05)
    assert r["fair_dense"]["ratio"] == pytest.approx(14.9, abs=0.05)
    assert r["integer"]["ratio"] == pytest.approx(8.85, abs=0.01)
    assert r["gateware"]["cycles_per_step"] == pytest.approx(1305.2, abs=0.1)


@pytest.mark.parametrize("make, message", [
    (lambda: E.Activity(n_steps=0, input_events=1, spikes=(1,)), "n_steps"),
    (lambda: E.Activity(n_steps=2, input_events=-1, spikes=(1,)), "input_events"),
    (lambda: E.Activity(n_steps=2, input_events=1, spikes=(-1,)), r"spikes\[0\]"),
    (lambda: E.Activity(n_steps=2, input_events=float("nan"), spikes=(1,)), "input_events"),
    (lambda: E.Activity(n_steps=2, input_events=1, spikes=()), "empty"),
    (lambda: E.Activity(n_steps=2, input_events=1, spikes=(2,), final_step_spikes=(3,)), "final_step_spikes"),
    (lambda: E.Activity(n_steps=2, input_events=1, spikes=(2,), final_step_spikes=(1, 1)), "layers"),
    (lambda: E.seed_paper(E.Activity(n_steps=2, input_events=1, spikes=(1, 1)), TINY), "2 layers"),
    (lambda: E.fair_dense(E.Activity(n_steps=2, input_events=7, spikes=(1,)), TINY), "input_events"),
    (lambda: E.neurobench(E.Activity(n_steps=2, input_events=1, spikes=(5,)), TINY), r"spikes\[0\]"),
    (lambda: E.gateware(E.Activity(n_steps=2, input_events=1, spikes=(1,)), TINY, lanes=3), "lanes"),
    (lambda: E.gateware(E.Activity(n_steps=2, input_events=1, spikes=(1,)), TINY, colour_bits=3), "unknown width"),
    (lambda: E.integer_costs(E.Activity(n_steps=2, input_events=1, spikes=(1,)), TINY, weight_bits=0), "weight_bits"),
    (lambda: E.integer_costs(E.Activity(n_steps=2, input_events=1, spikes=(1,)), TINY, rule="nearest"), "rule"),
    (lambda: E.GRUShape(3, 0, 2, 2), "hidden"),
    (lambda: E.Activity.from_arrays(X, [Z[:, :1]]), r"spikes\[0\]"),
    (lambda: E.connection_sparsity([]), "no weights"),
])
def test_bad_input(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# --------------------------------------------------------------------------------------------
# NeuroBench itself, when installed (`pip install --no-deps neurobench==2.3.0 snntorch`:
# docs/energy.md says why it is not a dependency)


def test_neurobench_package_agrees():
    torch = pytest.importorskip("torch")
    snn = pytest.importorskip("snntorch")
    pytest.importorskip("neurobench")
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.static import ConnectionSparsity, Footprint
    from neurobench.metrics.workload import ActivationSparsity, MembraneUpdates, SynapticOperations
    from neurobench.models import TorchModel

    torch.manual_seed(0)

    class Stepwise(torch.nn.Module):
        """3 -> 4 recurrent LIF -> 2 linear readout, stepped in Python as NeuroBench expects."""

        def __init__(self):
            super().__init__()
            self.fc_in, self.fc_rec = torch.nn.Linear(3, 4, bias=False), torch.nn.Linear(4, 4, bias=False)
            self.fc_out = torch.nn.Linear(4, 2, bias=False)
            self.lif = snn.Leaky(beta=0.8, threshold=0.3)
            with torch.no_grad():
                self.fc_in.weight.copy_(torch.rand(4, 3) + 0.1)  # no zero weights, enough to spike
                self.fc_rec.weight.copy_(torch.rand(4, 4) * 0.4 - 0.2)
            self.record = None

        def forward(self, x):
            mem = self.lif.init_leaky()
            z = torch.zeros(x.shape[0], 4)
            zs, mems, out = [], [], 0
            for x_t in x.unbind(1):
                z, mem = self.lif(self.fc_in(x_t) + self.fc_rec(z), mem)
                out = out + self.fc_out(z)
                zs.append(z)
                mems.append(mem)
            self.record = (torch.stack(zs, 1), torch.stack(mems, 1))
            return out

    net = Stepwise()
    x = (torch.rand(5, 6, 3) < 0.5).float()
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, torch.zeros(5, dtype=torch.long)), batch_size=5)
    model = TorchModel(net)
    model.add_activation_module(snn.SpikingNeuron)
    bench = Benchmark(model, data, [], [], [[Footprint, ConnectionSparsity],
                                            [SynapticOperations, ActivationSparsity, MembraneUpdates]])
    footprint = E.footprint_bytes(net)  # before the run: snnTorch adds its state as a buffer
    result = bench.run(quiet=True)
    z, mem = (t.detach().numpy() for t in net.record)
    assert 0 < z.sum() < z.size
    shape = NetworkShape(n_inputs=3, layers=(4,), recurrent=(True,), n_outputs=2)
    ours = E.neurobench(E.Activity.from_arrays(x.numpy(), [z], membranes=[mem]), shape,
                        footprint=footprint,
                        sparsity=E.connection_sparsity([m.weight.detach().numpy() for m in (net.fc_in, net.fc_rec, net.fc_out)]))
    assert ours["footprint_bytes"] == result["Footprint"]
    assert ours["connection_sparsity"] == result["ConnectionSparsity"]
    assert ours["activation_sparsity"] == pytest.approx(result["ActivationSparsity"])
    for key in ("Dense", "Effective_MACs", "Effective_ACs"):
        assert ours["synaptic_operations"][key] == pytest.approx(result["SynapticOperations"][key]), key
    assert ours["membrane_updates"] == pytest.approx(result["MembraneUpdates"])


def test_neurobench_gru_dense_agrees():
    torch = pytest.importorskip("torch")
    pytest.importorskip("snntorch")
    pytest.importorskip("neurobench")
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.workload import SynapticOperations
    from neurobench.models import TorchModel

    torch.manual_seed(0)

    class GRUNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.cell, self.fc = torch.nn.GRUCell(3, 4), torch.nn.Linear(4, 2)

        def forward(self, x):
            h, out = torch.zeros(x.shape[0], 4), 0
            for x_t in x.unbind(1):
                h = self.cell(x_t, h)
                out = out + self.fc(h)
            return out

    x = (torch.rand(2, 5, 3) < 0.5).float()
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, torch.zeros(2, dtype=torch.long)), batch_size=2)
    result = Benchmark(TorchModel(GRUNet()), data, [], [], [[], [SynapticOperations]]).run(quiet=True)
    ours = E.gru_baseline(E.GRUShape(n_inputs=3, hidden=4, n_outputs=2, n_steps=5))
    assert ours["neurobench_dense"] == result["SynapticOperations"]["Dense"]
