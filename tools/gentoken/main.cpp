// gentoken --secret=S --sub=USER [--ttl=SECONDS] [--claim=k=v ...]
//          [--alg=RS256|ES256 --key=PRIVATE_PEM_FILE]
//
// Prints a JWT that Parley accepts, for tests and for people trying Parley
// out. exp = now + ttl (default 3600), iat = now. A claim value that parses as
// JSON (number, array, object, true/false) is inserted as that value, anything
// else as a string:
//   gentoken --secret=dev --sub=alice --claim=rooms=["conversation:*"] --claim=profiles=[7]
// Without --secret or --key, or with an unknown flag: a message and exit 2.
#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "net/jwt.hpp"
#include "net/socketio_packet.hpp"

int main(int argc, char** argv) {
  std::string secret, sub, alg = "HS256", key_file;
  long long ttl = 3600;
  std::vector<std::pair<std::string, std::string>> extra;
  auto usage = [] {
    std::cerr << "usage: gentoken --secret=S --sub=USER [--ttl=SECONDS] [--claim=k=v ...] "
                 "[--alg=RS256|ES256 --key=PRIVATE_PEM_FILE]\n";
    return 2;
  };
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&](const char* flag) -> std::optional<std::string> {
      std::string f = flag;
      if (a.rfind(f, 0) == 0)
        return a.substr(f.size());
      return std::nullopt;
    };
    if (auto v = val("--secret=")) secret = *v;
    else if (auto v = val("--sub=")) sub = *v;
    else if (auto v = val("--ttl=")) {
      try { ttl = std::stoll(*v); } catch (...) { std::cerr << "gentoken: --ttl needs a number\n"; return 2; }
    } else if (auto v = val("--alg=")) alg = *v;
    else if (auto v = val("--key=")) key_file = *v;
    else if (auto v = val("--claim=")) {
      auto eq = v->find('=');
      if (eq == std::string::npos || eq == 0) {
        std::cerr << "gentoken: --claim needs k=v, got " << *v << "\n";
        return 2;
      }
      extra.emplace_back(v->substr(0, eq), v->substr(eq + 1));
    } else {
      std::cerr << "gentoken: unknown option " << a << "\n";
      return usage();
    }
  }
  if ((secret.empty() && key_file.empty()) || sub.empty())
    return usage();
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch()).count();
  std::string payload = "{\"sub\":";
  parley::sio::append_json_string(payload, sub);
  payload += ",\"iat\":" + std::to_string(now) + ",\"exp\":" + std::to_string(now + ttl);
  for (auto& [k, v] : extra) {
    payload += ",";
    parley::sio::append_json_string(payload, k);
    payload += ":";
    rapidjson::Document d;
    d.Parse(v.data(), v.size());
    if (!d.HasParseError() && !d.IsString())
      payload += parley::sio::to_json(d);
    else
      parley::sio::append_json_string(payload, v);
  }
  payload += "}";
  std::string token;
  if (!key_file.empty()) {
    std::ifstream in{key_file};
    if (!in) {
      std::cerr << "gentoken: cannot read " << key_file << "\n";
      return 2;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    token = parley::jwt::sign_with_key(alg, payload, ss.str());
    if (token.empty()) {
      std::cerr << "gentoken: cannot sign with " << alg << " and " << key_file << "\n";
      return 2;
    }
  } else {
    token = parley::jwt::sign_hs256(payload, secret);
  }
  std::cout << token << "\n";
  return 0;
}
