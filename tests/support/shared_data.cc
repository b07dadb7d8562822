#include "tests/support/shared_data.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"

namespace layerpool::testing {

std::string SharedDir() {
  const char* env = std::getenv("LAYERPOOL_SHARED");
  if (env == nullptr || *env == '\0') env = std::getenv("LAYERPOOL_SHARED_DEFAULT");
  std::string dir = env != nullptr ? env : "../shared";
  if (!std::filesystem::is_directory(dir + "/models")) {
    ADD_FAILURE() << "shared data not found at '" << dir
                  << "' (set LAYERPOOL_SHARED to the folder holding models/ "
                     "and golden/)";
    return "";
  }
  return dir;
}

std::string SharedPath(const std::string& relative) {
  return SharedDir() + "/" + relative;
}

std::vector<std::string> SharedFiles(const std::string& relative_dir,
                                     const std::string& suffix) {
  std::vector<std::string> out;
  std::string dir = SharedPath(relative_dir);
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::string name = entry.path().string();
    if (name.size() >= suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      out.push_back(name);
    }
  }
  if (ec) ADD_FAILURE() << "listing " << dir << ": " << ec.message();
  std::sort(out.begin(), out.end());
  return out;
}

std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ADD_FAILURE() << "cannot read " << path;
    return "";
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace layerpool::testing
