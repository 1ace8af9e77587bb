#include "sluice/http/cors.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sluice/http/field_syntax.h"

namespace sluice {
namespace {

absl::Status Invalid(std::string_view what) {
  return absl::InvalidArgumentError(std::string(what));
}

std::string Quoted(std::string_view s) { return absl::StrCat("\"", std::string(s), "\""); }

bool IsHostByte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

// A serialised origin (RFC 6454 §6.2, as browsers send it): scheme "://"
// host [":" port], no path, no trailing slash. `origin` is lower-case.
bool IsSerialisedOrigin(std::string_view origin) {
  std::string_view rest;
  if (origin.starts_with("https://")) {
    rest = origin.substr(8);
  } else if (origin.starts_with("http://")) {
    rest = origin.substr(7);
  } else {
    return false;
  }
  std::string_view host = rest;
  std::string_view port;
  if (rest.starts_with('[')) {  // IPv6 literal.
    const size_t close = rest.find(']');
    if (close == std::string_view::npos || close < 3) return false;
    for (char c : rest.substr(1, close - 1)) {
      if (!absl::ascii_isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') {
        return false;
      }
    }
    host = rest.substr(0, close + 1);
    rest.remove_prefix(close + 1);
    if (!rest.empty() && rest[0] != ':') return false;
    port = rest.empty() ? rest : rest.substr(1);
    if (!rest.empty() && port.empty()) return false;
  } else if (const size_t colon = rest.find(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    if (port.empty()) return false;
    if (host.empty() || !std::all_of(host.begin(), host.end(), IsHostByte)) return false;
  } else if (host.empty() || !std::all_of(host.begin(), host.end(), IsHostByte)) {
    return false;
  }
  if (port.size() > 5) return false;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
  }
  int port_number = 0;
  return port.empty() || (absl::SimpleAtoi(std::string(port), &port_number) && port_number > 0 &&
                          port_number <= 65535);
}

absl::Status CheckOrigins(const CorsSpec& spec, std::vector<std::string>* out, bool* any) {
  if (spec.origins.empty()) return Invalid("cors: origins must list at least one origin, or \"*\"");
  if (spec.origins.size() > CorsPolicy::kOriginsMax) {
    return Invalid(absl::StrCat("cors: at most ", CorsPolicy::kOriginsMax, " origins"));
  }
  for (const std::string& raw : spec.origins) {
    if (raw == "*") {
      if (spec.origins.size() != 1) return Invalid("cors: \"*\" must be the only origin listed");
      *any = true;
      return absl::OkStatus();
    }
    std::string origin = AsciiLower(raw);
    if (origin == "null") {
      return Invalid(
          "cors: origin \"null\" is refused: sandboxed documents and file: pages all send it, "
          "so allowing it allows anyone; use \"*\" if that is meant");
    }
    if (origin.size() > CorsPolicy::kOriginBytesMax || !IsSerialisedOrigin(origin)) {
      return Invalid(absl::StrCat("cors: origin ", Quoted(raw),
                                  " must be http(s)://host[:port] with no path or trailing "
                                  "slash, as browsers send it"));
    }
    if (std::find(out->begin(), out->end(), origin) != out->end()) {
      return Invalid(absl::StrCat("cors: origin ", Quoted(raw), " is listed twice"));
    }
    out->push_back(std::move(origin));
  }
  return absl::OkStatus();
}

absl::Status CheckNames(std::string_view key, const std::vector<std::string>& names, bool lower,
                        bool star_allowed, std::vector<std::string>* out, bool* star) {
  const size_t max = key == "methods" ? CorsPolicy::kMethodsMax : CorsPolicy::kHeadersMax;
  if (names.size() > max) {
    return Invalid(absl::StrCat("cors: at most ", max, " entries in ", std::string(key)));
  }
  for (const std::string& raw : names) {
    if (star_allowed && raw == "*") {
      if (names.size() != 1) {
        return Invalid(absl::StrCat("cors: \"*\" must be alone in ", std::string(key)));
      }
      *star = true;
      return absl::OkStatus();
    }
    if (raw == "*") {
      return Invalid(
          absl::StrCat("cors: \"*\" is not allowed in ", std::string(key), ": list the names"));
    }
    if (!IsHttpToken(raw) || raw.size() > CorsPolicy::kHeaderNameBytesMax) {
      return Invalid(absl::StrCat("cors: ", std::string(key), " entry ", Quoted(raw),
                                  " is not an HTTP token (RFC 9110 §5.6.2) of at most ",
                                  CorsPolicy::kHeaderNameBytesMax, " bytes"));
    }
    std::string name = lower ? AsciiLower(raw) : raw;
    if (std::find(out->begin(), out->end(), name) != out->end()) {
      return Invalid(
          absl::StrCat("cors: ", std::string(key), " entry ", Quoted(raw), " is listed twice"));
    }
    out->push_back(std::move(name));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CorsPolicy> CorsPolicy::Create(const CorsSpec& spec) {
  CorsPolicy p;
  bool unused = false;
  std::vector<std::string> expose;
  if (absl::Status st = CheckOrigins(spec, &p.origins_, &p.any_origin_); !st.ok()) return st;
  if (spec.methods.empty()) return Invalid("cors: methods must not be empty");
  for (absl::Status st :
       {CheckNames("methods", spec.methods, false, false, &p.methods_, &unused),
        CheckNames("headers", spec.headers, true, true, &p.headers_, &p.any_header_),
        CheckNames("expose_headers", spec.expose_headers, true, false, &expose, &unused)}) {
    if (!st.ok()) return st;
  }
  if (spec.max_age_seconds.has_value()) {
    if (*spec.max_age_seconds < 0 || *spec.max_age_seconds > kMaxAgeSecondsMax) {
      return Invalid(
          absl::StrCat("cors: max_age must be between 0 and ", kMaxAgeSecondsMax, " seconds"));
    }
    p.max_age_ = absl::StrCat(*spec.max_age_seconds);
  }
  p.allow_methods_ = absl::StrJoin(p.methods_, ", ");
  p.allow_headers_ = absl::StrJoin(p.headers_, ", ");
  p.expose_headers_ = absl::StrJoin(expose, ", ");
  return p;
}

bool CorsPolicy::OriginAllowed(std::string_view origin) const {
  if (any_origin_) return true;
  for (const std::string& o : origins_) {
    if (EqualsIgnoreCase(o, origin)) return true;
  }
  return false;
}

bool CorsPolicy::HeaderAllowed(std::string_view name) const {
  if (any_header_) return true;
  for (const std::string& h : headers_) {
    if (EqualsIgnoreCase(h, name)) return true;
  }
  return false;
}

void CorsPolicy::AddOriginFields(std::string_view origin, std::vector<HeaderField>* out) const {
  if (any_origin_) {
    out->push_back({"Access-Control-Allow-Origin", "*"});
  } else {
    // Echo the request's own bytes: the browser compares them byte for byte.
    out->push_back({"Access-Control-Allow-Origin", std::string(origin)});
    out->push_back({"Vary", "Origin"});
  }
}

std::vector<HeaderField> CorsPolicy::ForActualRequest(std::string_view origin) const {
  std::vector<HeaderField> out;
  if (!any_origin_ && (origin.empty() || !OriginAllowed(origin))) {
    out.push_back({"Vary", "Origin"});
    return out;
  }
  AddOriginFields(origin, &out);
  if (!expose_headers_.empty()) out.push_back({"Access-Control-Expose-Headers", expose_headers_});
  return out;
}

CorsPolicy::Preflight CorsPolicy::ForPreflight(std::string_view origin,
                                               std::optional<std::string_view> request_method,
                                               std::string_view request_headers) const {
  Preflight result;
  if (origin.empty() || !request_method.has_value()) return result;
  result.kind = Preflight::Kind::kRejected;
  if (!OriginAllowed(origin)) {
    result.reject_reason = "origin not allowed";
    return result;
  }
  if (std::find(methods_.begin(), methods_.end(), *request_method) == methods_.end()) {
    result.reject_reason = "method not allowed";
    return result;
  }
  // A comma-separated list of field names; empty elements are allowed (RFC 9110 §5.6.1).
  std::vector<std::string> asked;
  while (!request_headers.empty()) {
    const size_t comma = request_headers.find(',');
    std::string_view element = TrimOws(request_headers.substr(0, comma));
    request_headers.remove_prefix(comma == std::string_view::npos ? request_headers.size()
                                                                  : comma + 1);
    if (element.empty()) continue;
    if (!IsHttpToken(element) || asked.size() == kHeadersMax || !HeaderAllowed(element)) {
      result.reject_reason = "request header not allowed";
      return result;
    }
    asked.push_back(AsciiLower(element));
  }
  result.kind = Preflight::Kind::kAllowed;
  AddOriginFields(origin, &result.headers);
  result.headers.push_back({"Access-Control-Allow-Methods", allow_methods_});
  if (!asked.empty()) {
    // With "*" the names asked for are echoed: they are tokens, checked above.
    result.headers.push_back({"Access-Control-Allow-Headers",
                              any_header_ ? absl::StrJoin(asked, ", ") : allow_headers_});
  }
  if (!max_age_.empty()) result.headers.push_back({"Access-Control-Max-Age", max_age_});
  return result;
}

}  // namespace sluice
