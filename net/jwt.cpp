#include "net/jwt.hpp"

#include <cmath>
#include <cstring>
#include <limits>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <rapidjson/document.h>

#include "net/json.hpp"

namespace parley::jwt {

struct verifier::key {
  EVP_PKEY* pkey = nullptr;
  ~key() {
    EVP_PKEY_free(pkey);
  }
};

const char* to_string(failure f) {
  switch (f) {
    case failure::malformed: return "malformed token";
    case failure::unsupported_alg: return "unsupported algorithm";
    case failure::alg_mismatch: return "algorithm does not fit the configured key";
    case failure::bad_signature: return "bad signature";
    case failure::expired: return "token expired";
    case failure::not_yet_valid: return "token not valid yet";
    case failure::bad_issuer: return "wrong issuer";
    case failure::bad_audience: return "wrong audience";
    case failure::missing_sub: return "no sub claim";
    case failure::missing_exp: return "no exp claim";
    case failure::bad_time_claim: return "exp or nbf is not a NumericDate within 2^53 - 1 seconds of 1970";
  }
  return "invalid token";
}

namespace {

constexpr char b64url_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string hmac_sha256(std::string_view data, std::string_view secret) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return {reinterpret_cast<const char*>(out), len};
}

// JWS ES256 signatures are raw R||S; OpenSSL wants DER.
std::optional<std::string> raw_to_der(std::string_view raw) {
  if (raw.size() != 64)
    return std::nullopt;
  ECDSA_SIG* sig = ECDSA_SIG_new();
  auto* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr);
  auto* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr);
  ECDSA_SIG_set0(sig, r, s);
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  if (len <= 0)
    return std::nullopt;
  std::string out{reinterpret_cast<char*>(der), static_cast<size_t>(len)};
  OPENSSL_free(der);
  return out;
}

std::string der_to_raw(std::string_view der) {
  auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  if (!sig)
    return {};
  std::string out(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(sig), reinterpret_cast<unsigned char*>(out.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig), reinterpret_cast<unsigned char*>(out.data()) + 32, 32);
  ECDSA_SIG_free(sig);
  return out;
}

bool verify_sha256(EVP_PKEY* pkey, std::string_view data, std::string_view sig) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, pkey) == 1
            && EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                                reinterpret_cast<const unsigned char*>(data.data()), data.size())
                 == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

// Why an EC key cannot sign or verify ES256 (not on P-256), or nothing.
std::optional<std::string> not_p256(EVP_PKEY* pkey) {
  char group[80] = {0};
  size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) != 1)
    return std::string{"ES256 needs an EC key on P-256 (prime256v1), this one has no named curve"};
  if (OBJ_sn2nid(group) == NID_X9_62_prime256v1)
    return std::nullopt;
  return "ES256 needs an EC key on P-256 (prime256v1), this one is on " + std::string{group};
}

// RFC 7519 NumericDate, fractions allowed: a JSON number, finite and within
// JavaScript's safe integers, so that every comparison below is exact.
constexpr double max_numeric_date = 9007199254740991.0; // 2^53 - 1

std::optional<double> numeric_date(const rapidjson::Value& v) {
  if (!v.IsNumber())
    return std::nullopt;
  double d = v.GetDouble();
  if (!std::isfinite(d) || d > max_numeric_date || d < -max_numeric_date)
    return std::nullopt;
  return d;
}

// a + b and a - b, held at the int64 bounds instead of overflowing.
int64_t saturating_add(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r))
    return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  return r;
}

int64_t saturating_sub(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_sub_overflow(a, b, &r))
    return b < 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  return r;
}

std::vector<std::string> string_list(const rapidjson::Value& v) {
  std::vector<std::string> out;
  if (!v.IsArray())
    return out;
  for (auto& x : v.GetArray()) {
    if (x.IsString())
      out.emplace_back(x.GetString(), x.GetStringLength());
    else if (x.IsInt64())
      out.push_back(std::to_string(x.GetInt64()));
    else if (x.IsUint64())
      out.push_back(std::to_string(x.GetUint64()));
  }
  return out;
}

std::string opt_string(const rapidjson::Value& obj, const char* name) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || !it->value.IsString())
    return {};
  return {it->value.GetString(), it->value.GetStringLength()};
}

} // namespace

std::string base64url_encode(std::string_view raw) {
  std::string out;
  out.reserve((raw.size() + 2) / 3 * 4);
  auto byte = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(raw[k])); };
  size_t i = 0;
  for (; i + 2 < raw.size(); i += 3) {
    uint32_t n = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    for (int shift : {18, 12, 6, 0})
      out.push_back(b64url_chars[(n >> shift) & 63]);
  }
  if (i + 1 == raw.size()) {
    uint32_t n = byte(i) << 16;
    out.push_back(b64url_chars[(n >> 18) & 63]);
    out.push_back(b64url_chars[(n >> 12) & 63]);
  } else if (i + 2 == raw.size()) {
    uint32_t n = (byte(i) << 16) | (byte(i + 1) << 8);
    out.push_back(b64url_chars[(n >> 18) & 63]);
    out.push_back(b64url_chars[(n >> 12) & 63]);
    out.push_back(b64url_chars[(n >> 6) & 63]);
  }
  return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  if (text.size() % 4 == 1)
    return std::nullopt;
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    const char* p = c ? std::strchr(b64url_chars, c) : nullptr;
    if (!p)
      return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(p - b64url_chars);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

std::variant<verifier, std::string> verifier::make(key_config cfg) {
  verifier v;
  if (!cfg.public_key_pem.empty()) {
    BIO* bio = BIO_new_mem_buf(cfg.public_key_pem.data(), static_cast<int>(cfg.public_key_pem.size()));
    EVP_PKEY* pkey = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    if (!pkey)
      return std::string{"cannot read public key: not a PEM public key"};
    int type = EVP_PKEY_base_id(pkey);
    if (type != EVP_PKEY_RSA && type != EVP_PKEY_EC) {
      EVP_PKEY_free(pkey);
      return std::string{"cannot use public key: only RSA (RS256) and EC P-256 (ES256) keys are supported"};
    }
    if (type == EVP_PKEY_EC) {
      if (auto why = not_p256(pkey)) {
        EVP_PKEY_free(pkey);
        return "cannot use public key: " + *why;
      }
    }
    v.key_ = std::make_shared<key>();
    v.key_->pkey = pkey;
    v.key_type_ = type;
  }
  if (cfg.hs256_secret.empty() && !v.key_)
    return std::string{"neither a secret nor a public key is configured"};
  v.cfg_ = std::move(cfg);
  return v;
}

std::variant<claims, failure> verifier::verify(std::string_view token, int64_t now) const {
  auto d1 = token.find('.');
  if (d1 == std::string_view::npos)
    return failure::malformed;
  auto d2 = token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos)
    return failure::malformed;
  auto head_text = token.substr(0, d1);
  auto sig_text = token.substr(d2 + 1);
  if (head_text.size() > max_header_chars || sig_text.size() > max_signature_chars)
    return failure::malformed;
  auto head = base64url_decode(head_text);
  auto sig = base64url_decode(sig_text);
  if (!head || !sig)
    return failure::malformed;
  // The header is read before the signature is known to be good (it names
  // the algorithm), so it is small and parsed with the depth limit.
  rapidjson::Document h;
  if (!json::parse(h, *head) || !h.IsObject())
    return failure::malformed;
  auto alg = opt_string(h, "alg");
  auto signed_part = token.substr(0, d2);
  if (alg == "HS256") {
    if (cfg_.hs256_secret.empty())
      return failure::alg_mismatch;
    auto expect = hmac_sha256(signed_part, cfg_.hs256_secret);
    if (expect.size() != sig->size() || CRYPTO_memcmp(expect.data(), sig->data(), expect.size()) != 0)
      return failure::bad_signature;
  } else if (alg == "RS256") {
    if (key_type_ != EVP_PKEY_RSA)
      return failure::alg_mismatch;
    if (!verify_sha256(key_->pkey, signed_part, *sig))
      return failure::bad_signature;
  } else if (alg == "ES256") {
    if (key_type_ != EVP_PKEY_EC)
      return failure::alg_mismatch;
    auto der = raw_to_der(*sig);
    if (!der || !verify_sha256(key_->pkey, signed_part, *der))
      return failure::bad_signature;
  } else {
    return failure::unsupported_alg;
  }
  // Only now, signed by whoever holds the key, is the payload decoded and parsed.
  auto body = base64url_decode(token.substr(d1 + 1, d2 - d1 - 1));
  if (!body)
    return failure::malformed;
  rapidjson::Document p;
  if (!json::parse(p, *body) || !p.IsObject())
    return failure::malformed;
  auto exp_member = p.FindMember("exp");
  if (exp_member == p.MemberEnd())
    return failure::missing_exp;
  auto exp = numeric_date(exp_member->value);
  if (!exp)
    return failure::bad_time_claim;
  std::optional<double> nbf;
  if (auto it = p.FindMember("nbf"); it != p.MemberEnd()) {
    nbf = numeric_date(it->value);
    if (!nbf)
      return failure::bad_time_claim;
  }
  // exp and nbf are within ±(2^53 - 1), where doubles are exact integers; an
  // int64 beyond that range converts to a double beyond it too, so comparing
  // as doubles is exact, and saturating keeps now ± leeway defined.
  auto leeway = cfg_.leeway_seconds;
  if (static_cast<double>(saturating_sub(now, leeway)) >= *exp)
    return failure::expired;
  if (nbf && static_cast<double>(saturating_add(now, leeway)) < *nbf)
    return failure::not_yet_valid;
  claims c;
  c.exp = static_cast<int64_t>(std::ceil(*exp));
  if (!cfg_.issuer.empty() && opt_string(p, "iss") != cfg_.issuer)
    return failure::bad_issuer;
  if (!cfg_.audience.empty()) {
    auto aud = p.FindMember("aud");
    bool ok = false;
    if (aud != p.MemberEnd()) {
      if (aud->value.IsString())
        ok = cfg_.audience == aud->value.GetString();
      else
        for (auto& a : string_list(aud->value))
          ok = ok || a == cfg_.audience;
    }
    if (!ok)
      return failure::bad_audience;
  }
  auto sub = p.FindMember("sub");
  if (sub != p.MemberEnd() && sub->value.IsString())
    c.sub.assign(sub->value.GetString(), sub->value.GetStringLength());
  else if (sub != p.MemberEnd() && sub->value.IsInt64())
    c.sub = std::to_string(sub->value.GetInt64());
  if (c.sub.empty())
    return failure::missing_sub;
  c.email = opt_string(p, "email");
  c.role = opt_string(p, "role");
  if (auto r = p.FindMember("rooms"); r != p.MemberEnd())
    c.rooms = string_list(r->value);
  if (auto r = p.FindMember("profiles"); r != p.MemberEnd())
    c.profiles = string_list(r->value);
  return c;
}

std::string sign_hs256(std::string_view payload_json, std::string_view secret) {
  auto head = base64url_encode(R"({"alg":"HS256","typ":"JWT"})") + "." + base64url_encode(payload_json);
  return head + "." + base64url_encode(hmac_sha256(head, secret));
}

std::string sign_with_key(std::string_view alg, std::string_view payload_json,
                          std::string_view private_key_pem) {
  if (alg != "RS256" && alg != "ES256")
    return {};
  BIO* bio = BIO_new_mem_buf(private_key_pem.data(), static_cast<int>(private_key_pem.size()));
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!pkey)
    return {};
  int type = EVP_PKEY_base_id(pkey);
  if ((alg == "RS256" && type != EVP_PKEY_RSA) || (alg == "ES256" && (type != EVP_PKEY_EC || not_p256(pkey)))) {
    EVP_PKEY_free(pkey);
    return {};
  }
  auto head = base64url_encode("{\"alg\":\"" + std::string{alg} + "\",\"typ\":\"JWT\"}") + "."
              + base64url_encode(payload_json);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  std::string sig;
  if (EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, pkey) == 1
      && EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(head.data()),
                        head.size())
           == 1) {
    sig.resize(len);
    if (EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                       reinterpret_cast<const unsigned char*>(head.data()), head.size())
        == 1)
      sig.resize(len);
    else
      sig.clear();
  }
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(pkey);
  if (sig.empty())
    return {};
  if (alg == "ES256")
    sig = der_to_raw(sig);
  return head + "." + base64url_encode(sig);
}

} // namespace parley::jwt
