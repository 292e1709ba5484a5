// JSON Web Tokens: verification (HS256 with a secret, RS256/ES256 with a PEM
// public key; exp, nbf, iss, aud) and signing (gentoken, tests). OpenSSL EVP
// directly, so every rule is ours: `alg: none` and algorithms that do not fit
// the configured key are refused (no RS256→HS256 key confusion).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace parley::jwt {

struct key_config {
  std::string hs256_secret;   // empty = HS256 refused
  std::string public_key_pem; // RSA (RS256) or EC on P-256 only (ES256); empty = none
  std::string issuer;         // checked when non-empty
  std::string audience;       // checked when non-empty (aud string or array)
  int64_t leeway_seconds = 0;
};

struct claims {
  std::string sub, email, role;
  std::vector<std::string> rooms;
  std::vector<std::string> profiles;
  int64_t exp = 0; // rounded up to a whole second
};

enum class failure {
  malformed,
  unsupported_alg,
  alg_mismatch,
  bad_signature,
  expired,
  not_yet_valid,
  bad_issuer,
  bad_audience,
  missing_sub,
  missing_exp,
  // exp or nbf is not a number, or not finite, or beyond ±(2^53 − 1) seconds
  bad_time_claim,
};

const char* to_string(failure f);

class verifier {
public:
  // The verifier, or why the configuration cannot be used (an unreadable
  // key, an EC key not on P-256, neither secret nor key).
  static std::variant<verifier, std::string> make(key_config cfg);
  // Safe to call from several threads at once. The header (at most
  // max_header_chars of base64url) is read first, for `alg`; the payload only
  // once the signature is good. Both are parsed by parley::json::parse, so no
  // nesting deeper than parley.limits.max-json-depth is accepted.
  std::variant<claims, failure> verify(std::string_view token, int64_t now_unix) const;

private:
  struct key;
  key_config cfg_;
  std::shared_ptr<key> key_;
  int key_type_ = 0; // EVP_PKEY_RSA, EVP_PKEY_EC or 0
};

// Longest header and signature segments accepted (base64url characters);
// longer ones are malformed. 4096 characters is 3 KiB decoded: far more than
// any header Parley can use, and an RSA signature of up to 24576 bits.
constexpr size_t max_header_chars = 4096;
constexpr size_t max_signature_chars = 4096;

std::string sign_hs256(std::string_view payload_json, std::string_view secret);
// alg "RS256" (RSA key) or "ES256" (EC key on P-256); empty on error,
// including a key that does not fit the algorithm.
std::string sign_with_key(std::string_view alg, std::string_view payload_json,
                          std::string_view private_key_pem);
std::string base64url_encode(std::string_view bytes);
std::optional<std::string> base64url_decode(std::string_view text);

} // namespace parley::jwt
