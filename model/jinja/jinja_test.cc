// The interpreter's rules one at a time. Every expected string here is what
// python3-jinja2 3.1 renders for the same template and variables with
// trim_blocks and lstrip_blocks on (tests/chat_templates checks whole real
// templates against jinja2 itself).
#include "model/jinja/jinja.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace layerpool::jinja {
namespace {

std::string Render(std::string_view source, std::string_view json = "{}") {
  absl::StatusOr<Template> t = Template::Parse(source);
  if (!t.ok()) return "parse error: " + std::string(t.status().message());
  const Value context = Value::FromJson(nlohmann::ordered_json::parse(json));
  absl::StatusOr<std::string> out = t->Render(context.dict());
  if (!out.ok()) return "render error: " + std::string(out.status().message());
  return *out;
}

struct Case {
  const char* source;
  const char* json;
  const char* expected;
};

class RendersAsJinja2 : public testing::TestWithParam<Case> {};

TEST_P(RendersAsJinja2, Matches) {
  EXPECT_EQ(Render(GetParam().source, GetParam().json), GetParam().expected)
      << GetParam().source;
}

INSTANTIATE_TEST_SUITE_P(
    Rules, RendersAsJinja2,
    testing::Values(
        // Whitespace: trim_blocks, lstrip_blocks, `-`, `+`, a trailing newline.
        Case{"  {% if true %}\n  x\n  {% endif %}\n  {{ \"a\" }}\n", "{}", "  x\n  a"},
        Case{"a  {%- if true -%}  b  {%- endif %}\n", "{}", "ab"},
        Case{"a\n  {%+ if true %}b{% endif %}", "{}", "a\n  b"},
        Case{"{# note #}\nx", "{}", "x"},
        // Scoping: a set inside a loop body lives for one iteration.
        Case{"{% set x = 0 %}{% for i in [1,2] %}[{{ x }}]{% set x = i %}{% endfor %}{{ x }}",
             "{}", "[0][0]0"},
        Case{"{% set ns = namespace(n=0) %}{% for i in [1,2,3] %}{% set ns.n = ns.n + i %}"
             "{% endfor %}{{ ns.n }}",
             "{}", "6"},
        // Python's arithmetic and str().
        Case{"{{ 1/2 }}|{{ 4/2 }}|{{ 7//2 }}|{{ -7//2 }}|{{ -7%3 }}|{{ 2**10 }}|{{ 1.0 }}",
             "{}", "0.5|2.0|3|-4|2|1024|1.0"},
        Case{"{{ [1,\"a\"] }}|{{ {\"a\":none} }}|{{ true }}|{{ x }}|{{ 1e20 }}|{{ 0.0001 }}",
             "{}", "[1, 'a']|{'a': None}|True||1e+20|0.0001"},
        Case{"{{ \"it's\" }}{{ [\"it's\"] }}", "{}", "it's[\"it's\"]"},
        // Slices, methods, tests.
        Case{"{{ \"abc\"[::-1] }}{{ [1,2,3][1:] }}{{ \"a b  c\".split() }}{{ \"a,b\".split(\",\") }}"
             "{{ 3 is divisibleby 3 }}",
             "{}", "cba[2, 3]['a', 'b', 'c']['a', 'b']True"},
        Case{"{{ m[1:] | length }}{{ m[-1].role }}{{ m[0]['content'] | trim }}", 
             R"({"m":[{"role":"system","content":"  hi "},{"role":"user","content":"x"}]})",
             "1userhi"},
        Case{"{{ '  x\n'.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ 'ab'.startswith('a') }}|"
             "{{ 'a</think>b'.split('</think>')[-1] }}|{{ 'Ab'.upper() }}{{ 'Ab'.lower() }}",
             "{}", "x|a|True|b|ABab"},
        Case{"{{ x is defined }}{{ x is not defined }}{{ none is none }}{{ 'a' is string }}"
             "{{ 1 is number }}{{ d is mapping }}{{ [] is iterable }}",
             R"({"d":{}})", "FalseTrueTrueTrueTrueTrueTrue"},
        Case{"{{ 'a' in 'cat' }}{{ 2 in [1,2] }}{{ 'k' in d }}{{ 'z' not in d }}",
             R"({"d":{"k":1}})", "TrueTrueTrueTrue"},
        // Filters.
        Case{"{{ d | tojson }}|{{ d | tojson(indent=2) }}", R"({"d":{"a":[1,"é\n"],"b":{}}})",
             "{\"a\": [1, \"é\\n\"], \"b\": {}}|{\n  \"a\": [\n    1,\n    \"é\\n\"\n  ],\n  \"b\": {}\n}"},
        Case{"{{ x | default('d') }}{{ '' | default('e', true) }}{{ [3,1,2] | sort | join(',') }}"
             "{{ [1,2] | first }}{{ [1,2] | last }}{{ 'ab' | length }}",
             "{}", "de1,2,3122"},
        Case{"{{ m | selectattr('role', 'equalto', 'user') | map(attribute='c') | join }}"
             "{{ m | rejectattr('role', 'equalto', 'user') | list | length }}",
             R"({"m":[{"role":"user","c":"a"},{"role":"bot","c":"b"},{"role":"user","c":"c"}]})",
             "ac1"},
        Case{"{{ 'a\nb\n\nc' | indent(2) }}|{{ 'a\nb' | indent(2, true) }}", "{}",
             "a\n  b\n\n  c|  a\n  b"},
        Case{"{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k in d %}{{ k }}{% endfor %}",
             R"({"d":{"b":1,"a":2}})", "b=1;a=2;ba"},
        // Loops: loop variable, filter, else, break, continue.
        Case{"{% for x in 'abc' if x != 'b' %}{{ loop.index }}{{ x }}{{ loop.last }} {% endfor %}",
             "{}", "1aFalse 2cTrue "},
        Case{"{% for x in [] %}x{% else %}empty{% endfor %}", "{}", "empty"},
        Case{"{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}"
             "{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}",
             "{}", "013"},
        // Inline if, macros, set blocks.
        Case{"{{ 'y' if x else 'n' }}{{ 'y' if not x }}|{{ 1 ~ 2 ~ 'a' }}", "{}", "ny|12a"},
        Case{"{% macro greet(name, p='Hi') %}{{ p }} {{ name }}{% endmacro %}"
             "{{ greet('a') }}/{{ greet('b', p='Yo') }}",
             "{}", "Hi a/Yo b"},
        Case{"{% set s %}x{{ 1 + 1 }}{% endset %}[{{ s }}]", "{}", "[x2]"}));

TEST(Jinja, RaiseExceptionIsFailedPrecondition) {
  absl::StatusOr<Template> t =
      Template::Parse("{% if x != 1 %}{{ raise_exception('roles must alternate') }}{% endif %}");
  ASSERT_TRUE(t.ok());
  Dict context;
  absl::StatusOr<std::string> out = t->Render(context);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(out.status().message(), "roles must alternate");
}

TEST(Jinja, SyntaxErrorsNameTheLine) {
  for (const char* bad : {"a\n{% if x %}", "{{ 1 + }}", "a\nb\n{% include 'x' %}",
                          "{{ 'unterminated }}", "{% for in x %}{% endfor %}", "{{ x",
                          "{% endif %}"}) {
    absl::StatusOr<Template> t = Template::Parse(bad);
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(t.status().message(), testing::HasSubstr("line")) << bad;
  }
}

TEST(Jinja, TypeErrorsAreErrorsNotCrashes) {
  EXPECT_THAT(Render("{{ 'a' + 1 }}"), testing::HasSubstr("render error"));
  EXPECT_THAT(Render("{{ x.y.z }}"), testing::HasSubstr("render error"));
  EXPECT_THAT(Render("{{ 1 // 0 }}"), testing::HasSubstr("division by zero"));
  EXPECT_THAT(Render("{{ x | nosuchfilter }}"), testing::HasSubstr("nosuchfilter"));
}

TEST(Jinja, RunawayTemplatesStop) {
  EXPECT_THAT(Render("{% for i in range(1000000) %}{% for j in range(1000000) %}{% endfor %}"
                     "{% endfor %}"),
              testing::HasSubstr("steps"));
  EXPECT_THAT(Render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"),
              testing::HasSubstr("deeper"));
}

// Integers are 64-bit: where Python would grow a big int, rendering fails
// (the fuzzer found 928 ** 185 converting inf to an int64).
TEST(Jinja, IntegerOverflowIsAnErrorNotUndefinedBehaviour) {
  for (const char* overflow :
       {"{{ 928 ** 185 }}", "{{ 9223372036854775807 + 1 }}", "{{ -9223372036854775807 - 2 }}",
        "{{ 3037000500 * 3037000500 }}", "{{ (-9223372036854775807 - 1) // -1 }}",
        "{{ -(-9223372036854775807 - 1) }}", "{{ [9223372036854775807, 1] | sum }}",
        "{{ (-9223372036854775807 - 1) | abs }}"}) {
    EXPECT_THAT(Render(overflow), testing::HasSubstr("overflow")) << overflow;
  }
  // What fits is exact, as in Python.
  EXPECT_EQ(Render("{{ 2 ** 62 }} {{ (-2) ** 63 }} {{ 7 ** 0 }} {{ 0 ** 99999999999 }}"),
            "4611686018427387904 -9223372036854775808 1 0");
  EXPECT_EQ(Render("{{ (-9223372036854775807 - 1) % -1 }} {{ -7 // 2 }} {{ -7 % 2 }}"), "0 -4 1");
  // A float past the int64 range saturates; NaN is 0.
  EXPECT_EQ(Render("{{ (1e308 * 10) | int }} {{ (-1e308 * 10) | int }}"),
            "9223372036854775807 -9223372036854775808");
  EXPECT_EQ(Render("{{ range(9223372036854775806, 9223372036854775807, 9223372036854775807)"
                   " | list }}"),
            "[9223372036854775806]");
}

// A few bytes of template can ask for terabytes; values stop at 16 MiB.
TEST(Jinja, HugeValuesAreRefusedBeforeTheyAreBuilt) {
  for (const char* huge :
       {"{{ 'x' * 1000000 * 1000000 }}", "{{ ['x' * 1000000] * 1000000 }}",
        "{{ ('x' * 1000000) | replace('x', 'yyyyyyyyyyyyyyyyyy') }}",
        "{{ ('x' * 1000000).replace('x', 'yyyyyyyyyyyyyyyyyy') }}",
        "{{ 'a' | indent(999999999999, true) }}", "{{ range(1000000) | join('x' * 100) }}",
        "{{ ('x' * 100).join(('y' * 1000000) | list) }}",
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}"
        "{% endfor %}",
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}",
        "{% set ns = namespace(l=['x']) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}"
        "{% endfor %}"}) {
    EXPECT_THAT(Render(huge), testing::HasSubstr("16 MiB")) << huge;
  }
  EXPECT_THAT(Render("{{ [1] | tojson(indent=100000) }}"), testing::HasSubstr("indent over"));
  EXPECT_THAT(Render("{% for c in 'x' * 2000000 %}{% endfor %}"),
              testing::HasSubstr("million"));
  // A string up to the limit is indexed and measured without a string per
  // character.
  EXPECT_EQ(Render("{{ ('x' * 1000000 * 16)[-1] }}{{ ('x' * 1000000 * 16) | length }}"), "x16000000");
  EXPECT_EQ(Render("{{ 'h\u00e9llo'[1] }}{{ 'h\u00e9llo'[-1] }}{{ 'h\u00e9llo' | length }}"
                   "{{ 'h\u00e9llo'.find('l') }}{{ 'h\u00e9llo'[9] is defined }}"),
            "\u00e9o52False");
  // Below the limit, as before.
  EXPECT_EQ(Render("{{ ('ab' * 3) | replace('b', 'cc') }}|{{ [1, 2] | tojson(indent=2) }}"),
            "accaccacc|[\n  1,\n  2\n]");
}

}  // namespace
}  // namespace layerpool::jinja
