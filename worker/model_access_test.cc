#include "worker/model_access.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace layerpool {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

TEST(IsLocalPeerTest, LoopbackAndUnixOnly) {
  EXPECT_TRUE(IsLocalPeer("ipv4:127.0.0.1:5000"));
  EXPECT_TRUE(IsLocalPeer("ipv6:[::1]:5000"));
  EXPECT_TRUE(IsLocalPeer("unix:/tmp/sock"));
  EXPECT_FALSE(IsLocalPeer("ipv4:192.168.1.20:5000"));
  EXPECT_FALSE(IsLocalPeer("ipv6:[fe80::1]:5000"));
  EXPECT_FALSE(IsLocalPeer(""));
}

// A model directory with a model, a link to it, a link escaping to a file
// outside, a FIFO, and a file outside.
class ModelAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) / "model_access_test";
    fs::remove_all(root_);
    fs::create_directories(root_ / "models" / "sub");
    std::ofstream(root_ / "models" / "sub" / "m.gguf") << "GGUF";
    std::ofstream(root_ / "secret.gguf") << "GGUF";
    fs::create_symlink(root_ / "models" / "sub" / "m.gguf", root_ / "models" / "link.gguf");
    fs::create_symlink(root_ / "secret.gguf", root_ / "models" / "escape.gguf");
    ASSERT_EQ(mkfifo((root_ / "models" / "fifo.gguf").c_str(), 0600), 0);
    auto dir = CanonicalModelDir((root_ / "models").string());
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
  }
  void TearDown() override { fs::remove_all(root_); }

  absl::Status Check(const fs::path& p, bool local = false) {
    return CheckModelAccess(p.string(), dir_, local);
  }

  fs::path root_;
  std::string dir_;
};

TEST_F(ModelAccessTest, InsideTheDirectoryOnly) {
  EXPECT_TRUE(Check(root_ / "models" / "sub" / "m.gguf").ok());
  EXPECT_TRUE(Check(root_ / "models" / "link.gguf").ok());
  EXPECT_TRUE(Check(root_ / "models" / "sub" / ".." / "sub" / "m.gguf").ok());
  for (const fs::path& p : {root_ / "secret.gguf", root_ / "models" / "escape.gguf",
                            root_ / "models" / ".." / "secret.gguf"}) {
    const absl::Status s = Check(p, /*local=*/true);
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << p;
    EXPECT_THAT(s.message(), HasSubstr("outside this worker's --model-dir")) << p;
  }
  EXPECT_EQ(Check(root_ / "models" / "fifo.gguf").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Check(root_ / "models" / "missing.gguf").code(), absl::StatusCode::kNotFound);
  // A directory whose name extends the model directory's is not inside it.
  fs::create_directories(root_ / "models2");
  std::ofstream(root_ / "models2" / "m.gguf") << "GGUF";
  EXPECT_EQ(Check(root_ / "models2" / "m.gguf").code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(ModelAccessTest, WithoutADirectoryOnlyForLocalCoordinators) {
  EXPECT_TRUE(CheckModelAccess((root_ / "secret.gguf").string(), "", true).ok());
  const absl::Status s = CheckModelAccess((root_ / "secret.gguf").string(), "", false);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(s.message(), HasSubstr("--model-dir"));
  EXPECT_FALSE(CanonicalModelDir((root_ / "secret.gguf").string()).ok());
  EXPECT_FALSE(CanonicalModelDir((root_ / "nowhere").string()).ok());
}

}  // namespace
}  // namespace layerpool
