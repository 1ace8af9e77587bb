// Fuzzes ParseProxyHeader: the answer must not depend on how the bytes
// arrive, since a connection calls it after every RECV.
//
// Input: byte 0 picks a split point, the rest is what the connection
// receives. The data is parsed (1) whole, (2) up to the split point and then
// whole, and (3) one prefix at a time from empty to whole. Checked: a prefix
// that is kDone or kInvalid gives the same answer as the whole input; once
// kInvalid, every longer prefix is kInvalid; a header is kNeedMore until its
// last byte; `consumed` stays within the input and the limits; a v1 TCP4
// line is exactly the canonical rendering of what was parsed.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "sluice/http/proxy_protocol.h"

namespace {

using sluice::ParseProxyHeader;
using sluice::ProxyHeader;
using sluice::ProxyParse;
using Status = ProxyParse::Status;

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "proxy_protocol_fuzz: %s\n", what);
  std::abort();
}

bool SameEndpoint(const sluice::ProxyEndpoint& a, const sluice::ProxyEndpoint& b) {
  return a.address == b.address && a.port == b.port;
}

bool SameHeader(const ProxyHeader& a, const ProxyHeader& b) {
  return a.consumed == b.consumed && a.version == b.version && a.local == b.local &&
         SameEndpoint(a.source, b.source) && SameEndpoint(a.destination, b.destination) &&
         a.tlv_offset == b.tlv_offset && a.tlv_bytes == b.tlv_bytes;
}

// A final answer on a prefix must be the final answer on the whole.
void CheckPrefixAgrees(const ProxyParse& prefix, const ProxyParse& whole) {
  if (prefix.status == Status::kNeedMore) return;
  if (prefix.status != whole.status) Fail("a prefix's final answer differs from the whole's");
  if (prefix.status == Status::kDone && !SameHeader(prefix.header, whole.header)) {
    Fail("a prefix's header differs from the whole's");
  }
}

void CheckDone(const ProxyHeader& h, std::string_view data) {
  if (h.consumed == 0 || h.consumed > data.size()) Fail("consumed outside the input");
  if (h.consumed > sluice::kProxyHeaderBytesMax) Fail("consumed over the limit");
  if (h.version == 1) {
    if (h.consumed > sluice::kProxyV1BytesMax) Fail("v1 line over 107 bytes");
    if (data.substr(h.consumed - 2, 2) != "\r\n") Fail("v1 line does not end in CRLF");
    if (h.tlv_bytes != 0) Fail("TLVs in v1");
  } else if (h.version == 2) {
    if (h.consumed < sluice::kProxyV2FixedBytes) Fail("v2 shorter than its fixed part");
    if (h.tlv_bytes != 0 &&
        (h.tlv_offset < sluice::kProxyV2FixedBytes || h.tlv_offset + h.tlv_bytes != h.consumed)) {
      Fail("v2 TLV area is not the end of the header");
    }
  } else {
    Fail("version neither 1 nor 2");
  }
  if (!h.local) {
    if (!h.source.address.valid() || !h.destination.address.valid()) Fail("invalid address");
  }
  // Strict v1 TCP4 syntax has one spelling: rendering must give it back.
  if (h.version == 1 && !h.local && data.substr(6, 4) == "TCP4") {
    const std::string line =
        "PROXY TCP4 " + h.source.address.ToString() + " " + h.destination.address.ToString() + " " +
        std::to_string(h.source.port) + " " + std::to_string(h.destination.port) + "\r\n";
    if (line != data.substr(0, h.consumed)) Fail("v1 TCP4 line is not canonical");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* input, size_t size) {
  if (size < 1) return 0;
  const size_t len = size - 1;
  // An exact-size heap copy, so that any read past the end is caught.
  std::unique_ptr<char[]> buf(new char[len == 0 ? 1 : len]);
  if (len > 0) std::memcpy(buf.get(), input + 1, len);
  const std::string_view data(buf.get(), len);
  const size_t split = input[0] % (len + 1);

  const ProxyParse whole = ParseProxyHeader(data);
  if (whole.status == Status::kInvalid && whole.reason.empty()) Fail("kInvalid without reason");
  if (whole.status == Status::kDone) CheckDone(whole.header, data);
  CheckPrefixAgrees(ParseProxyHeader(data.substr(0, split)), whole);

  // Every prefix, as bytes trickle in; past the limit the answer is final.
  const size_t last =
      len < sluice::kProxyHeaderBytesMax + 1 ? len : sluice::kProxyHeaderBytesMax + 1;
  bool refused = false;
  for (size_t n = 0; n <= last; ++n) {
    const ProxyParse p = ParseProxyHeader(data.substr(0, n));
    CheckPrefixAgrees(p, whole);
    if (refused && p.status != Status::kInvalid) Fail("accepted again after kInvalid");
    refused = p.status == Status::kInvalid;
    if (whole.status == Status::kDone && n < whole.header.consumed &&
        p.status != Status::kNeedMore) {
      Fail("a header answered before its last byte");
    }
  }
  if (len > sluice::kProxyHeaderBytesMax && whole.status == Status::kNeedMore) {
    Fail("still waiting past the header limit");
  }
  return 0;
}
