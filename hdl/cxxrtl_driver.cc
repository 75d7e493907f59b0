// Testbench of the compiled (CXXRTL) simulation of hdl.core.NeuronCore; built by hdl/cxxrtl.py.
//
// Compiled as one translation unit with the design (`design.cc`, from Yosys `write_cxxrtl`) and a
// generated `config.h` that names the design's ports and describes its state memories. It does
// what hdl/sim.py does in Python, cycle for cycle:
//
//   usage: sim INPUT_FILE OUTPUT_FILE [--settle] [--vcd VCD_FILE]
//
// INPUT_FILE: little-endian uint32 input-stream items (the raw `inputs.payload`: kind in the low
// KIND_BITS bits, index above), samples back to back: per step the EVENT items, then an
// END_OF_STEP marker, or END_OF_SAMPLE for the last step of a sample. Each item is offered on
// `inputs` until it is taken; the outputs are always ready.
//
// OUTPUT_FILE: one packed little-endian record per step, in input order:
//   int64 cycles        clock cycles of the step (counted as hdl/sim.py counts them)
//   int64 prediction    the CLASS item after the last step of a sample, else -1
//   uint8 spikes[N_REC] 1 for each neuron sent as a SPIKE item in the step
//   then, for each state memory of config.h (STATE_MEMORIES) and each of its fields, the field
//   of every word, read right after the END_OF_STEP item is taken (Field::bytes bytes each,
//   sign-extended if the field is signed).
//
// stdout: "sample I" after each sample, then "cycles C seconds S cpu_seconds P": the cycles
// simulated and the wall-clock and processor time of the simulation loop alone.
// Exit status 1 with a message on stderr if a step runs longer than MAX_STEP_CYCLES.
//
// config.h also says how the payloads reach the ports (SET_INPUTS_PAYLOAD, GET_OUTPUTS_PAYLOAD: one
// packed port, or one port per field for an exported core). Compiled with -DCXXRTL_VCD (and the
// design written with full debug information), --vcd VCD_FILE writes a waveform with CXXRTL's
// vcd_writer: every debug item but the weight memories, a rising clock edge every
// 2 * VCD_HALF_PERIOD_PS picoseconds, each cycle's values from that edge on.

#include <chrono>
#include <cstdint>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "design.cc"
#include "config.h"
#ifdef CXXRTL_VCD
#include <cxxrtl/cxxrtl_vcd.h>
#endif

namespace {

// Input and output item kinds (hdl.core.InputKind, hdl.core.OutputKind).
constexpr uint32_t INPUT_END_OF_STEP = 1, INPUT_END_OF_SAMPLE = 2;
constexpr uint32_t OUTPUT_SPIKE = 0, OUTPUT_END_OF_STEP = 1, OUTPUT_CLASS = 2;
constexpr uint32_t KIND_MASK = (1u << KIND_BITS) - 1;

[[noreturn]] void fail(const std::string &message) {
	std::fprintf(stderr, "cxxrtl simulation: %s\n", message.c_str());
	std::exit(1);
}

// Field `field` of a memory word of 32-bit chunks (least significant chunk first).
int64_t extract(const cxxrtl::chunk_t *word, const Field &field) {
	unsigned first = field.offset / 32, last = (field.offset + field.width - 1) / 32;
	unsigned __int128 bits = 0;
	for (unsigned chunk = last + 1; chunk-- > first;)
		bits = (bits << 32) | word[chunk];
	uint64_t mask = field.width == 64 ? ~uint64_t(0) : (uint64_t(1) << field.width) - 1;
	uint64_t raw = uint64_t(bits >> (field.offset % 32)) & mask;
	if (field.is_signed && (raw >> (field.width - 1)) & 1)
		raw |= ~mask;
	return int64_t(raw);
}

void append(std::vector<uint8_t> &out, int64_t value, unsigned bytes) {
	for (unsigned byte = 0; byte < bytes; byte++)
		out.push_back(uint8_t(uint64_t(value) >> (8 * byte)));
}

std::vector<uint32_t> read_items(const char *path) {
	FILE *file = std::fopen(path, "rb");
	if (!file)
		fail(std::string("cannot open ") + path);
	std::vector<uint32_t> items;
	uint8_t bytes[4];
	while (std::fread(bytes, 1, 4, file) == 4)
		items.push_back(uint32_t(bytes[0]) | uint32_t(bytes[1]) << 8 | uint32_t(bytes[2]) << 16 | uint32_t(bytes[3]) << 24);
	std::fclose(file);
	return items;
}

struct StateMemoryView {
	const StateMemory *spec;
	const cxxrtl::debug_item *item;
};

}  // namespace

int main(int argc, char **argv) {
	bool settle = false;
	const char *vcd_path = nullptr;
	for (int arg = 3; arg < argc; arg++) {
		if (std::string(argv[arg]) == "--settle")
			settle = true;
		else if (std::string(argv[arg]) == "--vcd" && arg + 1 < argc)
			vcd_path = argv[++arg];
		else
			argc = 0;  // usage error
	}
	if (argc < 3)
		fail("usage: sim INPUT_FILE OUTPUT_FILE [--settle] [--vcd VCD_FILE]");
	std::vector<uint32_t> items = read_items(argv[1]);

	DUT top;
	cxxrtl::debug_items debug;
	top.debug_info(&debug, nullptr, "");
	std::vector<StateMemoryView> memories;
	for (const StateMemory &spec : STATE_MEMORIES) {
		if (debug.count(spec.name) != 1 || !debug.is_memory(spec.name))
			fail(std::string("the design has no memory '") + spec.name + "'");
		const cxxrtl::debug_item &item = debug[spec.name];
		if (item.depth != spec.depth || item.width != spec.width)
			fail(std::string("memory '") + spec.name + "' does not have the expected shape");
		memories.push_back({&spec, &item});
	}

#ifdef CXXRTL_VCD
	cxxrtl::vcd_writer vcd;
	FILE *vcd_file = nullptr;
	if (vcd_path) {
		vcd_file = std::fopen(vcd_path, "wb");
		if (!vcd_file)
			fail(std::string("cannot write ") + vcd_path);
		vcd.timescale(1, "ps");
		// Everything in scope `top` (as in the Amaranth simulation's VCD), the weight memories left out.
		for (auto &entry : debug.table) {
			const std::string &name = entry.first;
			for (auto &part : entry.second)
				if (part.type != cxxrtl::debug_item::MEMORY
				    || name.size() < 7 || name.compare(name.size() - 7, 7, "weights") != 0)
					vcd.add("top " + name, part, entry.second.size() > 1);
		}
	}
	// Appends the values now at `half_periods` half clock periods, writing the buffer out now and then.
	auto vcd_sample = [&vcd, vcd_file](uint64_t half_periods) {
		if (!vcd_file)
			return;
		vcd.sample(half_periods * VCD_HALF_PERIOD_PS);
		if (vcd.buffer.size() > (1u << 20)) {
			std::fwrite(vcd.buffer.data(), 1, vcd.buffer.size(), vcd_file);
			vcd.buffer.clear();
		}
	};
#else
	if (vcd_path)
		fail("this simulation was compiled without the VCD writer (build it with waveforms)");
	auto vcd_sample = [](uint64_t) {};
#endif
	uint64_t now = 0;  // clock cycles since the start, for the waveform's time axis

	std::vector<uint8_t> out;
	std::vector<uint8_t> spikes(N_REC);
	// cycle_begin() makes the outputs show what a testbench samples just before a rising edge
	// (from the current state and the inputs just set); cycle_end() applies the edge.
	//
	// Default, one evaluation per cycle: with the rising edge pending (clock low at the last
	// commit, high now), eval() computes the combinational outputs from the current state and
	// inputs and, separately, the next state; commit_unconditionally() (commit() without its
	// change detection, added by hdl/cxxrtl.py) applies the edge and records the clock as low
	// again. CXXRTL converges in one evaluation unless Yosys reported feedback wires.
	//
	// --settle, for designs with feedback wires: settle the logic with the clock low, then step
	// through the edge; two evaluations or more per cycle.
	//
	// Waveform: the rising edge that starts cycle `now` is at time 2 * now half periods. Without
	// --settle the values after eval() are those of the cycle (registers not yet committed, logic
	// evaluated from them), sampled with the clock high; then the clock falls half a period later.
	// With --settle the settled values with the clock low are sampled mid-cycle, and the values
	// after the edge's step() at the next edge.
	auto cycle_begin = [&top, settle, &vcd_sample, &now]() {
		if (settle) {
			top.p_clk.set(false);
			top.step();
			vcd_sample(2 * now + 1);
		} else {
			top.p_clk.set(true);
			if (!top.eval())
				fail("the design did not converge in one evaluation; run it with --settle");
			vcd_sample(2 * now);
		}
	};
	auto cycle_end = [&top, settle, &vcd_sample, &now]() {
		if (settle) {
			top.p_clk.set(true);
			top.step();
			vcd_sample(2 * ++now);
		} else {
			top.p_clk.set(false);
			vcd_sample(2 * now + 1);
			top.commit_unconditionally();
			now++;
		}
	};

	top.p_rst.set(false);
	top.PORT_OUTPUTS_READY.set(true);
	top.PORT_INPUTS_VALID.set(false);
	top.p_clk.set(false);
	top.step();

	auto started = std::chrono::steady_clock::now();
	std::clock_t cpu_started = std::clock();
	uint64_t total_cycles = 0, sample = 0;
	size_t position = 0;
	while (position < items.size()) {
		// One time step: offer the items up to and including the marker, then take the outputs.
		uint64_t cycles = 0;
		uint32_t marker;
		top.PORT_INPUTS_VALID.set(true);
		for (;;) {
			uint32_t item = items[position];
			SET_INPUTS_PAYLOAD(top, item);
			cycle_begin();
			bool ready = top.PORT_INPUTS_READY.get<bool>();
			cycle_end();
			if (++cycles > MAX_STEP_CYCLES)
				fail("a step did not take its input within MAX_STEP_CYCLES cycles");
			if (!ready)
				continue;
			position++;
			if ((item & KIND_MASK) == INPUT_END_OF_STEP || (item & KIND_MASK) == INPUT_END_OF_SAMPLE) {
				marker = item & KIND_MASK;
				break;
			}
			if (position == items.size())
				fail("the input ends without an END_OF_SAMPLE marker");
		}
		top.PORT_INPUTS_VALID.set(false);
		bool last = marker == INPUT_END_OF_SAMPLE;

		std::fill(spikes.begin(), spikes.end(), 0);
		size_t record = out.size();
		append(out, 0, 8);   // cycles, filled in below
		append(out, -1, 8);  // prediction
		size_t spikes_at = out.size();
		out.resize(out.size() + N_REC);
		for (;;) {
			cycle_begin();
			bool valid = top.PORT_OUTPUTS_VALID.get<bool>();
			uint64_t item = GET_OUTPUTS_PAYLOAD(top);
			cycle_end();
			if (++cycles > MAX_STEP_CYCLES)
				fail("a step did not end within MAX_STEP_CYCLES cycles");
			if (!valid)
				continue;
			uint32_t kind = item & KIND_MASK;
			uint64_t index = item >> KIND_BITS;
			if (kind == OUTPUT_SPIKE) {
				if (index >= N_REC)
					fail("SPIKE item with an index out of range");
				spikes[index] = 1;
			} else if (kind == OUTPUT_END_OF_STEP) {
				// Read after the edge that took the item, as hdl/sim.py does (nothing is written
				// while END_OF_STEP is offered, so these are the step's final states).
				for (const StateMemoryView &memory : memories)
					for (unsigned f = 0; f < memory.spec->field_count; f++)
						for (size_t row = 0; row < memory.spec->depth; row++) {
							const cxxrtl::chunk_t *word = memory.item->curr + row * ((memory.spec->width + 31) / 32);
							append(out, extract(word, memory.spec->fields[f]), memory.spec->fields[f].bytes);
						}
				if (!last)
					break;
			} else if (kind == OUTPUT_CLASS) {
				for (unsigned byte = 0; byte < 8; byte++)
					out[record + 8 + byte] = uint8_t(index >> (8 * byte));
				break;
			}
		}
		for (unsigned byte = 0; byte < 8; byte++)
			out[record + byte] = uint8_t(cycles >> (8 * byte));
		std::memcpy(&out[spikes_at], spikes.data(), N_REC);
		total_cycles += cycles;
		if (last) {
			std::printf("sample %llu\n", (unsigned long long)sample++);
			std::fflush(stdout);
		}
	}
	double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
	double cpu_seconds = double(std::clock() - cpu_started) / CLOCKS_PER_SEC;
#ifdef CXXRTL_VCD
	if (vcd_file) {
		if (!settle) {  // the rising edge that takes the last output item (not committed: the run is over)
			top.p_clk.set(true);
			top.eval();
			vcd_sample(2 * now);
		}
		if (std::fwrite(vcd.buffer.data(), 1, vcd.buffer.size(), vcd_file) != vcd.buffer.size() || std::fclose(vcd_file) != 0)
			fail(std::string("cannot write ") + vcd_path);
	}
#endif

	FILE *file = std::fopen(argv[2], "wb");
	if (!file || std::fwrite(out.data(), 1, out.size(), file) != out.size() || std::fclose(file) != 0)
		fail(std::string("cannot write ") + argv[2]);
	std::printf("cycles %llu seconds %.9f cpu_seconds %.9f\n", (unsigned long long)total_cycles, seconds, cpu_seconds);
	return 0;
}
