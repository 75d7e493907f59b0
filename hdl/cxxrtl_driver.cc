// Testbench of the compiled (CXXRTL) simulation of hdl.core.NeuronCore; built by hdl/cxxrtl.py.
//
// Compiled as one translation unit with the design (`design.cc`, from Yosys `write_cxxrtl`) and a
// generated `config.h` that names the design's ports and describes its state memories. It does
// what hdl/sim.py does in Python, cycle for cycle:
//
//   usage: sim INPUT_FILE OUTPUT_FILE [--settle]
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
	bool settle = argc == 4 && std::string(argv[3]) == "--settle";
	if (argc != 3 && !settle)
		fail("usage: sim INPUT_FILE OUTPUT_FILE [--settle]");
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
	auto cycle_begin = [&top, settle]() {
		if (settle) {
			top.p_clk.set(false);
			top.step();
		} else {
			top.p_clk.set(true);
			if (!top.eval())
				fail("the design did not converge in one evaluation; run it with --settle");
		}
	};
	auto cycle_end = [&top, settle]() {
		if (settle) {
			top.p_clk.set(true);
			top.step();
		} else {
			top.p_clk.set(false);
			top.commit_unconditionally();
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
			top.PORT_INPUTS_PAYLOAD.set(item);
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
			uint64_t item = top.PORT_OUTPUTS_PAYLOAD.get<uint64_t>();
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

	FILE *file = std::fopen(argv[2], "wb");
	if (!file || std::fwrite(out.data(), 1, out.size(), file) != out.size() || std::fclose(file) != 0)
		fail(std::string("cannot write ") + argv[2]);
	std::printf("cycles %llu seconds %.9f cpu_seconds %.9f\n", (unsigned long long)total_cycles, seconds, cpu_seconds);
	return 0;
}
