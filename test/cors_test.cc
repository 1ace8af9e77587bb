// Unit tests for CorsPolicy: validation of the spec, and the fields of
// actual and preflight responses (Fetch standard, CORS protocol).
#include "sluice/http/cors.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

// Readable failures: gtest finds this by argument-dependent lookup.
void PrintTo(const HeaderField& f, std::ostream* os) { *os << f.name << ": " << f.value; }

namespace {

using Fields = std::vector<HeaderField>;
using Kind = CorsPolicy::Preflight::Kind;

struct CaseName {
  template <typename T>
  std::string operator()(const testing::TestParamInfo<T>& param_info) const {
    return param_info.param.name;
  }
};

CorsPolicy Make(CorsSpec spec) {
  absl::StatusOr<CorsPolicy> p = CorsPolicy::Create(spec);
  EXPECT_TRUE(p.ok()) << p.status();
  return *std::move(p);
}

CorsSpec ListSpec() {
  CorsSpec spec;
  spec.origins = {"https://app.example.com", "http://localhost:3000"};
  spec.methods = {"GET", "HEAD", "PUT"};
  spec.headers = {"Content-Type", "X-Token"};
  spec.expose_headers = {"ETag"};
  spec.max_age_seconds = 600;
  return spec;
}

struct ActualCase {
  const char* name;
  bool any_origin;
  std::string_view origin;
  Fields expected;
};

class CorsActualTest : public testing::TestWithParam<ActualCase> {};

TEST_P(CorsActualTest, Fields) {
  CorsSpec spec = ListSpec();
  if (GetParam().any_origin) spec.origins = {"*"};
  EXPECT_EQ(Make(spec).ForActualRequest(GetParam().origin), GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(
    Table, CorsActualTest,
    testing::Values(
        ActualCase{
            "StarWithOrigin",
            true,
            "https://x.test",
            {{"Access-Control-Allow-Origin", "*"}, {"Access-Control-Expose-Headers", "etag"}}},
        ActualCase{
            "StarWithoutOrigin",
            true,
            "",
            {{"Access-Control-Allow-Origin", "*"}, {"Access-Control-Expose-Headers", "etag"}}},
        ActualCase{"ListedEchoed",
                   false,
                   "https://app.example.com",
                   {{"Access-Control-Allow-Origin", "https://app.example.com"},
                    {"Vary", "Origin"},
                    {"Access-Control-Expose-Headers", "etag"}}},
        ActualCase{"ListedOtherCaseEchoedAsSent",
                   false,
                   "HTTP://LOCALHOST:3000",
                   {{"Access-Control-Allow-Origin", "HTTP://LOCALHOST:3000"},
                    {"Vary", "Origin"},
                    {"Access-Control-Expose-Headers", "etag"}}},
        ActualCase{"UnlistedOnlyVary", false, "https://evil.test", {{"Vary", "Origin"}}},
        ActualCase{"PortMattersOnlyVary", false, "http://localhost:3001", {{"Vary", "Origin"}}},
        ActualCase{"NoOriginOnlyVary", false, "", {{"Vary", "Origin"}}},
        ActualCase{"NullOnlyVary", false, "null", {{"Vary", "Origin"}}}),
    CaseName());

struct PreflightCase {
  const char* name;
  bool any_origin;
  bool any_header;
  std::string_view origin;
  std::optional<std::string_view> method;
  std::string_view headers;
  Kind kind;
  Fields expected = {};
};

class CorsPreflightTest : public testing::TestWithParam<PreflightCase> {};

TEST_P(CorsPreflightTest, Decision) {
  const PreflightCase& c = GetParam();
  CorsSpec spec = ListSpec();
  if (c.any_origin) spec.origins = {"*"};
  if (c.any_header) spec.headers = {"*"};
  CorsPolicy::Preflight p = Make(spec).ForPreflight(c.origin, c.method, c.headers);
  EXPECT_EQ(p.kind, c.kind);
  EXPECT_EQ(p.headers, c.expected);
  EXPECT_EQ(p.kind == Kind::kRejected, !p.reject_reason.empty());
}

const Fields kAllowedApp = {{"Access-Control-Allow-Origin", "https://app.example.com"},
                            {"Vary", "Origin"},
                            {"Access-Control-Allow-Methods", "GET, HEAD, PUT"},
                            {"Access-Control-Max-Age", "600"}};

INSTANTIATE_TEST_SUITE_P(
    Table, CorsPreflightTest,
    testing::Values(PreflightCase{"NoOrigin", false, false, "", "GET", "", Kind::kNotPreflight},
                    PreflightCase{"NoMethodField", false, false, "https://app.example.com",
                                  std::nullopt, "", Kind::kNotPreflight},
                    PreflightCase{"Allowed", false, false, "https://app.example.com", "PUT", "",
                                  Kind::kAllowed, kAllowedApp},
                    PreflightCase{"AllowedWithHeaders",
                                  false,
                                  false,
                                  "https://app.example.com",
                                  "GET",
                                  "x-token, content-type",
                                  Kind::kAllowed,
                                  {{"Access-Control-Allow-Origin", "https://app.example.com"},
                                   {"Vary", "Origin"},
                                   {"Access-Control-Allow-Methods", "GET, HEAD, PUT"},
                                   {"Access-Control-Allow-Headers", "content-type, x-token"},
                                   {"Access-Control-Max-Age", "600"}}},
                    PreflightCase{"EmptyListElements",
                                  false,
                                  false,
                                  "https://app.example.com",
                                  "GET",
                                  " , X-TOKEN ,, ",
                                  Kind::kAllowed,
                                  {{"Access-Control-Allow-Origin", "https://app.example.com"},
                                   {"Vary", "Origin"},
                                   {"Access-Control-Allow-Methods", "GET, HEAD, PUT"},
                                   {"Access-Control-Allow-Headers", "content-type, x-token"},
                                   {"Access-Control-Max-Age", "600"}}},
                    PreflightCase{"StarOriginStarHeadersEchoed",
                                  true,
                                  true,
                                  "https://x.test",
                                  "GET",
                                  "Authorization,X-A",
                                  Kind::kAllowed,
                                  {{"Access-Control-Allow-Origin", "*"},
                                   {"Access-Control-Allow-Methods", "GET, HEAD, PUT"},
                                   {"Access-Control-Allow-Headers", "authorization, x-a"},
                                   {"Access-Control-Max-Age", "600"}}},
                    PreflightCase{"OriginNotAllowed", false, false, "https://evil.test", "GET", "",
                                  Kind::kRejected},
                    PreflightCase{"MethodNotAllowed", false, false, "https://app.example.com",
                                  "DELETE", "", Kind::kRejected},
                    PreflightCase{"MethodIsCaseSensitive", false, false, "https://app.example.com",
                                  "put", "", Kind::kRejected},
                    PreflightCase{"EmptyMethod", false, false, "https://app.example.com", "", "",
                                  Kind::kRejected},
                    PreflightCase{"HeaderNotAllowed", false, false, "https://app.example.com",
                                  "GET", "x-token, x-other", Kind::kRejected},
                    PreflightCase{"HeaderNotAToken", false, false, "https://app.example.com", "GET",
                                  "x token", Kind::kRejected}),
    CaseName());

TEST(CorsTest, TooManyRequestedHeadersAreRejected) {
  CorsSpec spec = ListSpec();
  spec.headers = {"*"};
  std::string asked;
  for (size_t i = 0; i <= CorsPolicy::kHeadersMax; ++i) asked += "x-h" + std::to_string(i) + ",";
  EXPECT_EQ(Make(spec).ForPreflight("https://a.test", "GET", asked).kind, Kind::kRejected);
}

TEST(CorsTest, NoMaxAgeNoExposeFields) {
  CorsSpec spec;
  spec.origins = {"*"};
  CorsPolicy p = Make(spec);
  EXPECT_TRUE(p.any_origin());
  EXPECT_EQ(p.ForActualRequest("https://a.test"), (Fields{{"Access-Control-Allow-Origin", "*"}}));
  EXPECT_EQ(p.ForPreflight("https://a.test", "HEAD", "").headers,
            (Fields{{"Access-Control-Allow-Origin", "*"},
                    {"Access-Control-Allow-Methods", "GET, HEAD"}}));
}

struct SpecErrorCase {
  const char* name;
  CorsSpec spec;
  std::string_view message;
};

class CorsSpecErrorTest : public testing::TestWithParam<SpecErrorCase> {};

TEST_P(CorsSpecErrorTest, Refused) {
  absl::StatusOr<CorsPolicy> p = CorsPolicy::Create(GetParam().spec);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(p.status().message()).find(GetParam().message), std::string::npos)
      << p.status();
}

CorsSpec With(std::vector<std::string> origins, std::vector<std::string> methods = {"GET"},
              std::vector<std::string> headers = {}, std::optional<int64_t> max_age = {}) {
  CorsSpec s;
  s.origins = std::move(origins);
  s.methods = std::move(methods);
  s.headers = std::move(headers);
  s.max_age_seconds = max_age;
  return s;
}

std::vector<std::string> Many(std::string_view prefix, size_t n) {
  std::vector<std::string> v;
  for (size_t i = 0; i < n; ++i) v.push_back(std::string(prefix) + std::to_string(i));
  return v;
}

INSTANTIATE_TEST_SUITE_P(
    Table, CorsSpecErrorTest,
    testing::Values(
        SpecErrorCase{"NoOrigins", With({}), "at least one origin"},
        SpecErrorCase{"StarNotAlone", With({"*", "https://a.test"}), "\"*\" must be the only"},
        SpecErrorCase{"NullOrigin", With({"null"}), "\"null\" is refused"},
        SpecErrorCase{"Path", With({"https://a.test/"}), "no path or trailing slash"},
        SpecErrorCase{"Scheme", With({"ftp://a.test"}), "must be http(s)://host[:port]"},
        SpecErrorCase{"BadPort", With({"https://a.test:99999"}), "must be http(s)://"},
        SpecErrorCase{"EmptyPort", With({"https://a.test:"}), "must be http(s)://"},
        SpecErrorCase{"BadHostByte", With({"https://a_b.test"}), "must be http(s)://"},
        SpecErrorCase{"Twice", With({"https://a.test", "HTTPS://A.TEST"}), "listed twice"},
        SpecErrorCase{"TooManyOrigins", With(Many("https://a", 65)), "at most 64 origins"},
        SpecErrorCase{"NoMethods", With({"*"}, {}), "methods must not be empty"},
        SpecErrorCase{"MethodNotToken", With({"*"}, {"GE T"}), "not an HTTP token"},
        SpecErrorCase{"StarMethod", With({"*"}, {"*"}), "\"*\" is not allowed in methods"},
        SpecErrorCase{"TooManyMethods", With({"*"}, Many("M", 17)), "at most 16 entries"},
        SpecErrorCase{"HeaderNotToken", With({"*"}, {"GET"}, {"x:y"}), "not an HTTP token"},
        SpecErrorCase{"HeaderStarNotAlone", With({"*"}, {"GET"}, {"*", "a"}), "must be alone"},
        SpecErrorCase{"HeaderTwice", With({"*"}, {"GET"}, {"A", "a"}), "listed twice"},
        SpecErrorCase{"MaxAgeNegative", With({"*"}, {"GET"}, {}, -1), "max_age must be"},
        SpecErrorCase{"MaxAgeHuge", With({"*"}, {"GET"}, {}, 86401), "max_age must be"}),
    CaseName());

TEST(CorsTest, AcceptsIpv6AndPortOrigins) {
  EXPECT_TRUE(
      CorsPolicy::Create(With({"http://[::1]:8080", "https://127.0.0.1", "http://a:1"})).ok());
}

}  // namespace
}  // namespace sluice
