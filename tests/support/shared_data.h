// Where tests find ../shared (real models and llama.cpp's golden outputs).
//
// One setting: the LAYERPOOL_SHARED environment variable; when unset, the
// path CMake recorded at configure time (LAYERPOOL_SHARED_DIR, default
// <repo>/../shared). A missing folder is a test failure, never a skip: CI
// must not go green by silently testing nothing.
#ifndef LAYERPOOL_TESTS_SUPPORT_SHARED_DATA_H_
#define LAYERPOOL_TESTS_SUPPORT_SHARED_DATA_H_

#include <string>
#include <vector>

namespace layerpool::testing {

// The shared folder. Fails the current test (ADD_FAILURE) and returns "" if
// it does not exist.
std::string SharedDir();

// SharedDir() + "/" + relative.
std::string SharedPath(const std::string& relative);

// Files under SharedDir()/relative_dir whose names end with `suffix`, sorted.
std::vector<std::string> SharedFiles(const std::string& relative_dir,
                                     const std::string& suffix);

// Whole file as bytes; fails the test if it cannot be read.
std::string ReadFileOrDie(const std::string& path);

}  // namespace layerpool::testing

#endif  // LAYERPOOL_TESTS_SUPPORT_SHARED_DATA_H_
