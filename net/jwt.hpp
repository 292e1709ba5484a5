// JSON Web Tokens: verification (HS256 with a secret, RS256/ES256 with a PEM
// public key; exp, nbf, iss, aud) and signing (gentoken, tests). OpenSSL EVP
// directly, so every rule is ours: `alg: none` and algorithms that do not fit
// the configured key are refused (no RS256→HS256 key confusion).
#pragma once

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
  std::string public_key_pem; // RSA (RS256) or EC P-256 (ES256); empty = none
  std::string issuer;         // checked when non-empty
  std::string audience;       // checked when non-empty (aud string or array)
  int64_t leeway_seconds = 0;
};

struct claims {
  std::string sub, email, role;
  std::vector<std::string> rooms;
  std::vector<std::string> profiles;
  int64_t exp = 0;
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
};

const char* to_string(failure f);

class verifier {
public:
  static std::variant<verifier, std::string> make(key_config cfg);
  // Safe to call from several threads at once.
  std::variant<claims, failure> verify(std::string_view token, int64_t now_unix) const;

private:
  struct key;
  key_config cfg_;
  std::shared_ptr<key> key_;
  int key_type_ = 0; // EVP_PKEY_RSA, EVP_PKEY_EC or 0
};

std::string sign_hs256(std::string_view payload_json, std::string_view secret);
// alg "RS256" or "ES256"; empty on error.
std::string sign_with_key(std::string_view alg, std::string_view payload_json,
                          std::string_view private_key_pem);
std::string base64url_encode(std::string_view bytes);
std::optional<std::string> base64url_decode(std::string_view text);

} // namespace parley::jwt
