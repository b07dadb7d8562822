#include "model/chat/chat_template.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace layerpool {
namespace {

using Json = nlohmann::ordered_json;

constexpr char kChatMl[] =
    "{{ bos_token }}{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

TEST(ChatTemplate, RendersMessagesWithBosAndGenerationPrompt) {
  auto t = ChatTemplate::FromSource(kChatMl, "<s>", "</s>");
  ASSERT_TRUE(t.ok()) << t.status();
  auto out = t->Apply(Json::parse(R"([{"role":"user","content":"Hi"}])"), true);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "<s><|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, JoinsTextPartsForTemplatesThatExpectStrings) {
  auto t = ChatTemplate::FromSource(kChatMl, "", "");
  ASSERT_TRUE(t.ok());
  auto out = t->Apply(Json::parse(R"([{"role":"user","content":[
      {"type":"text","text":"a"},{"type":"text","text":"b"}]}])"), false);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "<|im_start|>user\na\nb<|im_end|>\n");
}

TEST(ChatTemplate, KeepsPartsForTemplatesThatReadThem) {
  auto t = ChatTemplate::FromSource(
      "{% for p in messages[0]['content'] %}[{{ p['type'] }}:{{ p['text'] }}]{% endfor %}", "", "");
  ASSERT_TRUE(t.ok());
  auto out = t->Apply(Json::parse(R"([{"role":"user","content":[{"type":"text","text":"a"}]}])"),
                      false);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "[text:a]");
}

TEST(ChatTemplate, RefusesMalformedMessagesNamingThem) {
  auto t = ChatTemplate::FromSource(kChatMl, "", "");
  ASSERT_TRUE(t.ok());
  for (const char* bad : {R"([])", R"([{"content":"x"}])", R"([{"role":"user","content":5}])",
                          R"([{"role":"user","content":[{"type":"image_url"}]}])"}) {
    auto out = t->Apply(Json::parse(bad), true);
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(out.status().message(), testing::HasSubstr("messages")) << bad;
  }
}

TEST(ChatTemplate, TemplateRefusalIsFailedPrecondition) {
  auto t = ChatTemplate::FromSource(
      "{% if messages[0].role != 'user' %}{{ raise_exception('first must be user') }}{% endif %}",
      "", "");
  ASSERT_TRUE(t.ok());
  auto out = t->Apply(Json::parse(R"([{"role":"assistant","content":"x"}])"), true);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(out.status().message(), "first must be user");
}

TEST(ChatTemplate, ParseErrorNamesTheTemplate) {
  auto t = ChatTemplate::FromSource("{% for %}", "", "");
  EXPECT_THAT(t.status().message(), testing::HasSubstr("chat template: template line 1"));
}

}  // namespace
}  // namespace layerpool
