#define CAF_SUITE jwt
#include <caf/test/unit_test.hpp>

#include <limits>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "net/json.hpp"
#include "net/jwt.hpp"

using namespace parley;

namespace {

constexpr int64_t now = 1700000000;

std::string payload(const std::string& extra = "") {
  return "{\"sub\":\"u1\",\"exp\":" + std::to_string(now + 60) + extra + "}";
}

jwt::verifier hs_verifier(jwt::key_config kc = {}) {
  kc.hs256_secret = "s3cret";
  return std::get<jwt::verifier>(jwt::verifier::make(kc));
}

// A token with this header and payload JSON, HS256-signed with `secret`.
std::string hs_token(const std::string& header, const std::string& body, const std::string& secret = "s3cret") {
  auto signed_part = jwt::base64url_encode(header) + "." + jwt::base64url_encode(body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size(), mac, &len);
  return signed_part + "." + jwt::base64url_encode({reinterpret_cast<const char*>(mac), len});
}

constexpr const char* hs_header = R"({"alg":"HS256","typ":"JWT"})";

// Arrays nested `levels` deep.
std::string nested(size_t levels) {
  return std::string(levels, '[') + std::string(levels, ']');
}

// A fresh key pair as PEM texts (private, public).
std::pair<std::string, std::string> keypair(bool ec, const char* curve = "P-256") {
  EVP_PKEY* pkey = ec ? EVP_EC_gen(curve) : EVP_RSA_gen(2048);
  auto pem = [&](bool priv) {
    BIO* bio = BIO_new(BIO_s_mem());
    if (priv)
      PEM_write_bio_PrivateKey(bio, pkey, nullptr, nullptr, 0, nullptr, nullptr);
    else
      PEM_write_bio_PUBKEY(bio, pkey);
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    std::string out{data, static_cast<size_t>(len)};
    BIO_free(bio);
    return out;
  };
  auto result = std::make_pair(pem(true), pem(false));
  EVP_PKEY_free(pkey);
  return result;
}

template <class T>
jwt::failure failure_of(const T& r) {
  if (auto f = std::get_if<jwt::failure>(&r))
    return *f;
  CAF_FAIL("token was accepted");
}

} // namespace

CAF_TEST(a valid HS256 token yields its claims) {
  auto v = hs_verifier();
  auto t = jwt::sign_hs256(payload(",\"rooms\":[\"conversation:*\"],\"profiles\":[7,\"p8\"],\"email\":\"a@b.c\""), "s3cret");
  auto r = v.verify(t, now);
  auto c = std::get_if<jwt::claims>(&r);
  CAF_REQUIRE(c != nullptr);
  CAF_CHECK_EQUAL(c->sub, "u1");
  CAF_CHECK_EQUAL(c->email, "a@b.c");
  CAF_REQUIRE_EQUAL(c->rooms.size(), 1u);
  CAF_CHECK_EQUAL(c->rooms[0], "conversation:*");
  CAF_REQUIRE_EQUAL(c->profiles.size(), 2u);
  CAF_CHECK_EQUAL(c->profiles[0], "7");
  CAF_CHECK_EQUAL(c->profiles[1], "p8");
}

CAF_TEST(time and signature failures) {
  auto v = hs_verifier();
  CAF_CHECK(failure_of(v.verify(jwt::sign_hs256(payload(), "s3cret"), now + 60)) == jwt::failure::expired);
  CAF_CHECK(failure_of(v.verify(jwt::sign_hs256(payload(",\"nbf\":" + std::to_string(now + 10)), "s3cret"), now))
            == jwt::failure::not_yet_valid);
  auto t = jwt::sign_hs256(payload(), "s3cret");
  t.back() = t.back() == 'A' ? 'B' : 'A';
  CAF_CHECK(failure_of(v.verify(t, now)) == jwt::failure::bad_signature);
  CAF_CHECK(failure_of(v.verify(jwt::sign_hs256(payload(), "other"), now)) == jwt::failure::bad_signature);
  CAF_CHECK(failure_of(v.verify(jwt::sign_hs256("{\"sub\":\"u\"}", "s3cret"), now)) == jwt::failure::missing_exp);
  CAF_CHECK(failure_of(v.verify(jwt::sign_hs256("{\"exp\":" + std::to_string(now + 9) + "}", "s3cret"), now))
            == jwt::failure::missing_sub);
}

CAF_TEST(alg none and malformed tokens) {
  auto v = hs_verifier();
  auto none = jwt::base64url_encode("{\"alg\":\"none\"}") + "." + jwt::base64url_encode(payload()) + ".";
  CAF_CHECK(failure_of(v.verify(none, now)) == jwt::failure::unsupported_alg);
  CAF_CHECK(failure_of(v.verify("a.b", now)) == jwt::failure::malformed);
  CAF_CHECK(failure_of(v.verify("a.b.c.d", now)) == jwt::failure::malformed);
  CAF_CHECK(failure_of(v.verify("!!.??.**", now)) == jwt::failure::malformed);
  auto not_json = jwt::base64url_encode("{\"alg\":\"HS256\"}") + "." + jwt::base64url_encode("nope") + ".x";
  CAF_CHECK(failure_of(v.verify(not_json, now)) == jwt::failure::malformed);
}

CAF_TEST(RS256 and ES256 and no key confusion) {
  auto [rsa_priv, rsa_pub] = keypair(false);
  auto [ec_priv, ec_pub] = keypair(true);
  jwt::key_config kc;
  kc.public_key_pem = rsa_pub;
  auto rs = std::get<jwt::verifier>(jwt::verifier::make(kc));
  auto ok = rs.verify(jwt::sign_with_key("RS256", payload(), rsa_priv), now);
  CAF_CHECK(std::holds_alternative<jwt::claims>(ok));
  // HS256 made with the public key's text as the secret must not pass.
  CAF_CHECK(failure_of(rs.verify(jwt::sign_hs256(payload(), rsa_pub), now)) == jwt::failure::alg_mismatch);
  CAF_CHECK(failure_of(rs.verify(jwt::sign_with_key("ES256", payload(), ec_priv), now))
            == jwt::failure::alg_mismatch);
  kc.public_key_pem = ec_pub;
  auto es = std::get<jwt::verifier>(jwt::verifier::make(kc));
  CAF_CHECK(std::holds_alternative<jwt::claims>(es.verify(jwt::sign_with_key("ES256", payload(), ec_priv), now)));
  auto [other_priv, other_pub] = keypair(true);
  CAF_CHECK(failure_of(es.verify(jwt::sign_with_key("ES256", payload(), other_priv), now))
            == jwt::failure::bad_signature);
  kc.public_key_pem = "not a pem";
  CAF_CHECK(std::holds_alternative<std::string>(jwt::verifier::make(kc)));
  CAF_CHECK(std::holds_alternative<std::string>(jwt::verifier::make(jwt::key_config{})));
}

CAF_TEST(a header nested too deep or too long is malformed) {
  auto v = hs_verifier();
  // Validly signed, so only the header's shape can refuse them.
  CAF_CHECK(std::holds_alternative<jwt::claims>(v.verify(hs_token(R"({"alg":"HS256","x":)" + nested(10) + "}", payload()), now)));
  CAF_CHECK(failure_of(v.verify(hs_token(R"({"alg":"HS256","x":)" + nested(json::max_depth()) + "}", payload()), now))
            == jwt::failure::malformed);
  CAF_CHECK(failure_of(v.verify(hs_token(R"({"alg":"HS256","x":)" + nested(150000) + "}", payload()), now))
            == jwt::failure::malformed);
  // 3 KiB of header is 4096 base64url characters: the most accepted.
  auto header_of = [](size_t size) {
    std::string h = R"({"alg":"HS256","x":")";
    return h + std::string(size - h.size() - 2, 'a') + "\"}";
  };
  CAF_REQUIRE_EQUAL(jwt::base64url_encode(header_of(3072)).size(), jwt::max_header_chars);
  CAF_CHECK(std::holds_alternative<jwt::claims>(v.verify(hs_token(header_of(3072), payload()), now)));
  CAF_CHECK(failure_of(v.verify(hs_token(header_of(3073), payload()), now)) == jwt::failure::malformed);
  auto long_sig = hs_token(hs_header, payload()) + std::string(jwt::max_signature_chars, 'A');
  CAF_CHECK(failure_of(v.verify(long_sig, now)) == jwt::failure::malformed);
}

CAF_TEST(the signature is checked before the payload is parsed) {
  auto v = hs_verifier();
  auto deep = [](size_t levels) { return payload(",\"x\":" + nested(levels)); };
  // The payload object is one level, so x may nest max-depth - 1 arrays.
  CAF_CHECK(std::holds_alternative<jwt::claims>(v.verify(hs_token(hs_header, deep(json::max_depth() - 1)), now)));
  CAF_CHECK(failure_of(v.verify(hs_token(hs_header, deep(json::max_depth())), now)) == jwt::failure::malformed);
  CAF_CHECK(failure_of(v.verify(hs_token(hs_header, deep(150000)), now)) == jwt::failure::malformed);
  CAF_CHECK(failure_of(v.verify(hs_token(hs_header, deep(150000), "other"), now)) == jwt::failure::bad_signature);
  CAF_CHECK(failure_of(v.verify(hs_token(hs_header, deep(json::max_depth()), "other"), now))
            == jwt::failure::bad_signature);
  // Not JSON, or not base64url, with a bad signature: the signature is what is wrong.
  CAF_CHECK(failure_of(v.verify(hs_token(hs_header, "nope", "other"), now)) == jwt::failure::bad_signature);
  auto good = hs_token(hs_header, payload());
  auto d1 = good.find('.'), d2 = good.rfind('.');
  auto bad_base64 = good.substr(0, d1) + ".!!" + good.substr(d2);
  CAF_CHECK(failure_of(v.verify(bad_base64, now)) == jwt::failure::bad_signature);
  CAF_CHECK(failure_of(v.verify(hs_token(hs_header, "nope"), now)) == jwt::failure::malformed);
  CAF_CHECK(failure_of(v.verify(hs_token(hs_header, "[]"), now)) == jwt::failure::malformed);
}

CAF_TEST(exp and nbf must be NumericDates within 2^53 - 1 seconds) {
  auto v = hs_verifier();
  auto with = [](const std::string& claims) { return hs_token(hs_header, "{\"sub\":\"u1\"," + claims + "}"); };
  auto exp_ok = "\"exp\":" + std::to_string(now + 60);
  for (std::string bad : {"1e19", "1e300", "-1e300", "9007199254740992", "-9007199254740992", "18446744073709551615",
                          "\"2000000000\"", "null", "true", "[1]"}) {
    CAF_MESSAGE("exp or nbf " << bad);
    CAF_CHECK(failure_of(v.verify(with("\"exp\":" + bad), now)) == jwt::failure::bad_time_claim);
    CAF_CHECK(failure_of(v.verify(with(exp_ok + ",\"nbf\":" + bad), now)) == jwt::failure::bad_time_claim);
  }
  // The bounds themselves are NumericDates.
  CAF_CHECK(std::holds_alternative<jwt::claims>(v.verify(with("\"exp\":9007199254740991"), now)));
  CAF_CHECK(std::holds_alternative<jwt::claims>(v.verify(with(exp_ok + ",\"nbf\":-9007199254740991"), now)));
  CAF_CHECK(failure_of(v.verify(with("\"exp\":-9007199254740991"), now)) == jwt::failure::expired);
  CAF_CHECK(failure_of(v.verify(with(exp_ok + ",\"nbf\":9007199254740991"), now)) == jwt::failure::not_yet_valid);
  CAF_CHECK(jwt::to_string(jwt::failure::bad_time_claim)
            == std::string{"exp or nbf is not a NumericDate within 2^53 - 1 seconds of 1970"});
}

CAF_TEST(fractional exp and nbf are compared exactly) {
  auto v = hs_verifier();
  auto with = [](const std::string& claims) { return hs_token(hs_header, "{\"sub\":\"u1\"," + claims + "}"); };
  auto half_past = std::to_string(now) + ".5";
  auto r = v.verify(with("\"exp\":" + half_past), now);
  auto c = std::get_if<jwt::claims>(&r);
  CAF_REQUIRE(c != nullptr);
  CAF_CHECK_EQUAL(c->exp, now + 1);
  CAF_CHECK(failure_of(v.verify(with("\"exp\":" + half_past), now + 1)) == jwt::failure::expired);
  auto exp_ok = "\"exp\":" + std::to_string(now + 60);
  CAF_CHECK(failure_of(v.verify(with(exp_ok + ",\"nbf\":" + half_past), now)) == jwt::failure::not_yet_valid);
  CAF_CHECK(std::holds_alternative<jwt::claims>(v.verify(with(exp_ok + ",\"nbf\":" + half_past), now + 1)));
  CAF_CHECK(std::holds_alternative<jwt::claims>(v.verify(with("\"exp\":1e10"), now)));
}

CAF_TEST(leeway is added without overflow) {
  jwt::key_config kc;
  kc.leeway_seconds = 30;
  auto v = hs_verifier(kc);
  auto with = [](const std::string& claims) { return hs_token(hs_header, "{\"sub\":\"u1\"," + claims + "}"); };
  CAF_CHECK(std::holds_alternative<jwt::claims>(v.verify(with("\"exp\":" + std::to_string(now - 29)), now)));
  CAF_CHECK(failure_of(v.verify(with("\"exp\":" + std::to_string(now - 30)), now)) == jwt::failure::expired);
  CAF_CHECK(std::holds_alternative<jwt::claims>(
    v.verify(with("\"exp\":" + std::to_string(now + 60) + ",\"nbf\":" + std::to_string(now + 30)), now)));
  CAF_CHECK(failure_of(v.verify(with("\"exp\":" + std::to_string(now + 60) + ",\"nbf\":" + std::to_string(now + 31)), now))
            == jwt::failure::not_yet_valid);
  // now + leeway and exp + leeway do not fit in 64 bits: the token is inside
  // its window all the same.
  kc.leeway_seconds = std::numeric_limits<int64_t>::max();
  auto lax = hs_verifier(kc);
  CAF_CHECK(std::holds_alternative<jwt::claims>(
    lax.verify(with("\"exp\":" + std::to_string(now - 1000) + ",\"nbf\":" + std::to_string(now + 1000)), now)));
}

CAF_TEST(ES256 needs a P-256 key) {
  for (auto curve : {"P-384", "secp256k1"}) {
    CAF_MESSAGE("curve " << curve);
    auto [priv, pub] = keypair(true, curve);
    jwt::key_config kc;
    kc.public_key_pem = pub;
    auto made = jwt::verifier::make(kc);
    auto err = std::get_if<std::string>(&made);
    CAF_REQUIRE(err != nullptr);
    CAF_CHECK_EQUAL(*err, std::string{"cannot use public key: ES256 needs an EC key on P-256 (prime256v1), this one is on "}
                            + (curve == std::string{"P-384"} ? "secp384r1" : "secp256k1"));
    CAF_CHECK_EQUAL(jwt::sign_with_key("ES256", payload(), priv), "");
  }
  auto [rsa_priv, rsa_pub] = keypair(false);
  auto [ec_priv, ec_pub] = keypair(true);
  CAF_CHECK_EQUAL(jwt::sign_with_key("ES256", payload(), rsa_priv), "");
  CAF_CHECK_EQUAL(jwt::sign_with_key("RS256", payload(), ec_priv), "");
  CAF_CHECK_NOT_EQUAL(jwt::sign_with_key("ES256", payload(), ec_priv), "");
}

CAF_TEST(issuer and audience) {
  jwt::key_config kc;
  kc.issuer = "parley";
  kc.audience = "chat";
  auto v = hs_verifier(kc);
  CAF_CHECK(std::holds_alternative<jwt::claims>(
    v.verify(jwt::sign_hs256(payload(",\"iss\":\"parley\",\"aud\":[\"x\",\"chat\"]"), "s3cret"), now)));
  CAF_CHECK(failure_of(v.verify(jwt::sign_hs256(payload(",\"iss\":\"other\",\"aud\":\"chat\""), "s3cret"), now))
            == jwt::failure::bad_issuer);
  CAF_CHECK(failure_of(v.verify(jwt::sign_hs256(payload(",\"iss\":\"parley\",\"aud\":\"x\""), "s3cret"), now))
            == jwt::failure::bad_audience);
}

CAF_TEST(base64url round trip) {
  for (std::string s : {std::string{}, std::string{"f"}, std::string{"fo"}, std::string{"foo"}, std::string("\xfb\xff", 2)}) {
    auto d = jwt::base64url_decode(jwt::base64url_encode(s));
    CAF_REQUIRE(d);
    CAF_CHECK_EQUAL(*d, s);
  }
  CAF_CHECK_EQUAL(jwt::base64url_encode("\xfb\xff"), "-_8");
}
