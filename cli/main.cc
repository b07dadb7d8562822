// layerpool: one binary, one subcommand per job.

#include <cstring>
#include <iostream>
#include <span>
#include <string_view>

#include "cli/commands.h"

namespace {

struct Command {
  std::string_view name;
  std::string_view summary;
  int (*run)(std::span<char* const>);
};

constexpr Command kCommands[] = {
    {"inspect", "describe a GGUF file: hyper-parameters, tensors, memory",
     layerpool::cli::RunInspect},
    {"tokenize", "turn JSON strings on stdin into token ids with a model's tokenizer",
     layerpool::cli::RunTokenize},
    {"synth", "write a random-weight model (llama, qwen2) in a quant type",
     layerpool::cli::RunSynth},
    {"run", "generate text from a prompt in this process",
     layerpool::cli::RunRun},
    {"perplexity", "measure perplexity on a text file (llama.cpp's method)",
     layerpool::cli::RunPerplexity},
    {"worker", "serve one pipeline stage to a coordinator over gRPC",
     layerpool::cli::RunWorker},
    {"serve", "coordinate workers; serve the gRPC Inference and OpenAI-style HTTP APIs",
     layerpool::cli::RunServe},
    {"bench-split", "measure throughput per layer split and concurrency",
     layerpool::cli::RunBenchSplit},
    {"embed", "embeddings in this process (JSON strings on stdin)",
     layerpool::cli::RunEmbed},
    {"plan", "will a model fit on these devices at this context? (before loading)",
     layerpool::cli::RunPlan},
    {"chat-template", "render a chat template with a conversation (JSON on stdin)",
     layerpool::cli::RunChatTemplate},
};

void PrintUsage(std::ostream& out) {
  out << "usage: layerpool <command> [flags]   (layerpool <command> --help)\n\n"
         "commands:\n";
  for (const Command& c : kCommands) {
    out << "  " << c.name << std::string(15 - c.name.size(), ' ') << c.summary
        << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    PrintUsage(std::cerr);
    return 2;
  }
  std::string_view name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    PrintUsage(std::cout);
    return 0;
  }
  for (const Command& c : kCommands) {
    if (c.name == name) return c.run(std::span<char* const>(argv + 2, argc - 2));
  }
  std::cerr << "error: unknown command '" << name << "'\n";
  PrintUsage(std::cerr);
  return 2;
}
