// The subcommands of the `layerpool` binary. Each takes the words after its
// name and returns the process exit status: 0 on success, 1 when the work
// failed (an "error: ..." line is printed on stderr), 2 on bad usage.
#ifndef LAYERPOOL_CLI_COMMANDS_H_
#define LAYERPOOL_CLI_COMMANDS_H_

#include <span>

namespace layerpool::cli {

int RunInspect(std::span<char* const> args);   // inspect.cc
int RunTokenize(std::span<char* const> args);  // tokenize.cc
int RunSynth(std::span<char* const> args);     // synth.cc
int RunRun(std::span<char* const> args);       // run.cc
int RunPerplexity(std::span<char* const> args);  // perplexity.cc
int RunWorker(std::span<char* const> args);    // worker.cc
int RunServe(std::span<char* const> args);     // serve.cc
int RunBenchSplit(std::span<char* const> args);  // bench_split.cc
int RunChatTemplate(std::span<char* const> args);  // chat_template.cc
int RunPlan(std::span<char* const> args);      // plan.cc
int RunEmbed(std::span<char* const> args);     // embed.cc

}  // namespace layerpool::cli

#endif  // LAYERPOOL_CLI_COMMANDS_H_
