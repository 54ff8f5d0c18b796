#include "core/division_code.h"

#include "gtest/gtest.h"

namespace caselink {
namespace {

TEST(DivisionCodeTest, ShortFormsArePadded) {
  struct Case {
    const char* in;
    const char* out;
  };
  for (const Case& c : {Case{"35", "350000000000"},
                        Case{"3502", "350200000000"},
                        Case{"350212", "350212000000"},
                        Case{"350212101", "350212101000"},
                        Case{"350212101202", "350212101202"}}) {
    auto code = NormalizeDivisionCode(c.in);
    ASSERT_TRUE(code.ok()) << c.in << ": " << code.status();
    EXPECT_EQ(*code, c.out) << c.in;
  }
}

TEST(DivisionCodeTest, MalformedCodesAreRefusedWithTheText) {
  for (const char* bad : {"", "3", "350", "3502123", "35021x", "00",
                          "3502120000000", "35 02"}) {
    auto code = NormalizeDivisionCode(bad);
    ASSERT_FALSE(code.ok()) << bad;
    EXPECT_NE(code.status().message().find(std::string("\"") + bad + "\""),
              std::string::npos)
        << code.status();
  }
}

TEST(DivisionCodeTest, LevelsAndPrefixes) {
  EXPECT_EQ(LevelOf("350000000000"), DivisionLevel::kProvince);
  EXPECT_EQ(LevelOf("350200000000"), DivisionLevel::kCity);
  EXPECT_EQ(LevelOf("350212000000"), DivisionLevel::kCounty);
  EXPECT_EQ(LevelOf("350212101000"), DivisionLevel::kTownship);
  EXPECT_EQ(LevelOf("350212101202"), DivisionLevel::kVillage);
  EXPECT_EQ(SignificantPrefix("350200000000"), "3502");
  EXPECT_EQ(SignificantPrefix("350212101000"), "350212101");
  EXPECT_EQ(ProvinceOf("510104000000"), "510000000000");
}

}  // namespace
}  // namespace caselink
