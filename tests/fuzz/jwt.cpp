// jwt: token verification (parley::jwt::verifier, net/jwt.hpp) with an HS256
// secret, an EC P-256 public key (ES256), and both with issuer, audience and
// leeway; `now` fixed. Only the public API is used.
//
// Input: byte 0 chooses what the rest is:
//   0  a token, verified as it is;
//   1  a payload, signed with the secret (jwt::sign_hs256) first, so that the
//      claims checks after the signature are reached;
//   2  a header and a payload separated by a 0 byte, joined into a token
//      whose HMAC-SHA256 signature with the secret is right, whatever its alg says.
// The rest is also run through jwt's base64url codec against eio's encoder.
#include <cstdlib>
#include <string>
#include <variant>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <rapidjson/document.h>

#include "fuzz_check.hpp"
#include "net/engineio_packet.hpp"
#include "net/json.hpp"
#include "net/jwt.hpp"

using namespace parley;

namespace {

constexpr int64_t now = 1700000000;
constexpr std::string_view secret = "fuzz-secret";
constexpr std::string_view b64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// A public test key; the corpus's ES256 tokens were signed with its private
// half, which was thrown away (tests/fuzz/README.md).
constexpr const char* es256_public_pem = R"(-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE6C4Pb8umU3oKl8E6umVaRIJNmuat
R/vKQh3bBtkn3+0OGA2/lI4dx+SPewfoonw69iu+kxu+TNEiE7RYFz+6kA==
-----END PUBLIC KEY-----
)";

struct verifiers {
  jwt::verifier hs, ec, strict;
  static constexpr int64_t strict_leeway = 30;
};

jwt::verifier make(jwt::key_config kc) {
  auto v = jwt::verifier::make(std::move(kc));
  FUZZ_CHECK(std::holds_alternative<jwt::verifier>(v));
  return std::get<jwt::verifier>(std::move(v));
}

const verifiers& the_verifiers() {
  static const verifiers* v = [] {
    jwt::key_config hs;
    hs.hs256_secret = std::string{secret};
    jwt::key_config ec;
    ec.public_key_pem = es256_public_pem;
    jwt::key_config strict = hs;
    strict.public_key_pem = es256_public_pem;
    strict.issuer = "parley";
    strict.audience = "chat";
    strict.leeway_seconds = verifiers::strict_leeway;
    return new verifiers{make(hs), make(ec), make(strict)};
  }();
  return *v;
}

std::string hmac(std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return {reinterpret_cast<const char*>(out), len};
}

// The header's alg, when the header is a JSON object with a string alg.
std::string alg_of(std::string_view header_json) {
  rapidjson::Document d;
  d.Parse(header_json.data(), header_json.size());
  if (d.HasParseError() || !d.IsObject())
    return {};
  auto it = d.FindMember("alg");
  if (it == d.MemberEnd() || !it->value.IsString())
    return {};
  return {it->value.GetString(), it->value.GetStringLength()};
}

// What an accepted token must be: claims the verifier's rules allow, and,
// for HS256, a signature that is the HMAC of what it signs.
void check_accepted(std::string_view token, const jwt::claims& c, int64_t leeway, bool hs_key) {
  FUZZ_CHECK(!c.sub.empty());
  FUZZ_CHECK(now - leeway < c.exp);
  auto d1 = token.find('.');
  auto d2 = token.rfind('.');
  FUZZ_CHECK(d1 != std::string_view::npos && d2 != d1);
  FUZZ_CHECK(token.find('.', d1 + 1) == d2);
  auto head = jwt::base64url_decode(token.substr(0, d1));
  auto sig = jwt::base64url_decode(token.substr(d2 + 1));
  FUZZ_CHECK(head && sig);
  auto alg = alg_of(*head);
  if (alg == "HS256") {
    FUZZ_CHECK(hs_key);
    FUZZ_CHECK(*sig == hmac(token.substr(0, d2)));
  } else {
    FUZZ_CHECK(alg == "ES256");
  }
}

using result = std::variant<jwt::claims, jwt::failure>;

const jwt::claims* accepted(const result& r) {
  return std::get_if<jwt::claims>(&r);
}

bool failed_with(const result& r, jwt::failure f) {
  auto got = std::get_if<jwt::failure>(&r);
  return got && *got == f;
}

void verify_all(std::string_view token) {
  auto& v = the_verifiers();
  auto r1 = v.hs.verify(token, now);
  if (auto c = accepted(r1))
    check_accepted(token, *c, 0, true);
  auto r2 = v.ec.verify(token, now);
  if (auto c = accepted(r2))
    check_accepted(token, *c, 0, false);
  auto r3 = v.strict.verify(token, now);
  if (auto c = accepted(r3))
    check_accepted(token, *c, verifiers::strict_leeway, true);
}

bool json_object(std::string_view text) {
  rapidjson::Document d;
  return json::parse(d, text) && d.IsObject();
}

// A token signed with the secret over a payload.
void signed_payload(std::string_view payload) {
  auto& v = the_verifiers();
  auto token = jwt::sign_hs256(payload, secret);
  for (auto* ver : {&v.hs, &v.strict}) {
    auto r = ver->verify(token, now);
    FUZZ_CHECK(!failed_with(r, jwt::failure::bad_signature));
    FUZZ_CHECK(!failed_with(r, jwt::failure::unsupported_alg));
    FUZZ_CHECK(!failed_with(r, jwt::failure::alg_mismatch));
    if (json_object(payload))
      FUZZ_CHECK(!failed_with(r, jwt::failure::malformed));
    if (auto c = accepted(r))
      check_accepted(token, *c, ver == &v.strict ? verifiers::strict_leeway : 0, true);
  }
  auto r = v.ec.verify(token, now);
  FUZZ_CHECK(failed_with(r, jwt::failure::alg_mismatch) || failed_with(r, jwt::failure::malformed));
}

// A token whose HMAC is right whatever its header says.
void hmac_signed(std::string_view header, std::string_view payload) {
  auto& v = the_verifiers();
  auto signing_input = jwt::base64url_encode(header) + "." + jwt::base64url_encode(payload);
  auto token = signing_input + "." + jwt::base64url_encode(hmac(signing_input));
  auto alg = alg_of(header);
  for (auto* ver : {&v.hs, &v.ec, &v.strict}) {
    auto r = ver->verify(token, now);
    if (accepted(r))
      FUZZ_CHECK(alg == "HS256" && ver != &v.ec);
    if (alg == "HS256")
      FUZZ_CHECK(!failed_with(r, jwt::failure::bad_signature));
  }
  verify_all(token);
}

// jwt's base64url against eio's encoder, and what its decoder takes.
void check_base64url(std::string_view raw) {
  auto enc = jwt::base64url_encode(raw);
  FUZZ_CHECK(enc == eio::base64url_encode(raw));
  auto dec = jwt::base64url_decode(enc);
  FUZZ_CHECK(dec && *dec == raw);
  bool valid = raw.size() % 4 != 1;
  for (char c : raw)
    valid = valid && b64url.find(c) != std::string_view::npos;
  auto any = jwt::base64url_decode(raw);
  FUZZ_CHECK(any.has_value() == valid);
  if (any)
    FUZZ_CHECK(any->size() == raw.size() * 6 / 8);
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  the_verifiers();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  auto rest = fuzz::as_text(data + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      verify_all(rest);
      break;
    case 1:
      signed_payload(rest);
      break;
    default: {
      auto nul = rest.find('\0');
      if (nul == std::string_view::npos)
        hmac_signed(rest, {});
      else
        hmac_signed(rest.substr(0, nul), rest.substr(nul + 1));
    }
  }
  check_base64url(rest);
  return 0;
}
