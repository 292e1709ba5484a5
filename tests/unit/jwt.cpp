#define CAF_SUITE jwt
#include <caf/test/unit_test.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>

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

// A fresh key pair as PEM texts (private, public).
std::pair<std::string, std::string> keypair(bool ec) {
  EVP_PKEY* pkey = ec ? EVP_EC_gen("P-256") : EVP_RSA_gen(2048);
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
