#include "net/socketio_packet.hpp"

#include <cstring>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "net/json.hpp"

namespace parley::sio {

namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool reserved_event(std::string_view name) {
  return name == "connect" || name == "connect_error" || name == "disconnect"
         || name == "disconnecting" || name == "newListener" || name == "removeListener";
}

bool payload_valid(packet_type t, const rapidjson::Document* doc) {
  switch (t) {
    case packet_type::connect:
      return doc == nullptr || doc->IsObject();
    case packet_type::disconnect:
      return doc == nullptr;
    case packet_type::connect_error:
      return doc != nullptr && (doc->IsString() || doc->IsObject());
    case packet_type::event:
    case packet_type::binary_event:
      if (doc == nullptr)
        return false;
      if (!doc->IsArray() || doc->Empty())
        return false;
      if ((*doc)[0].IsNumber())
        return true;
      return (*doc)[0].IsString()
             && !reserved_event({(*doc)[0].GetString(), (*doc)[0].GetStringLength()});
    case packet_type::ack:
    case packet_type::binary_ack:
      return doc != nullptr && doc->IsArray();
  }
  return false;
}

} // namespace

std::variant<packet, std::string> decode(std::string_view str) {
  packet p;
  if (str.empty() || str[0] < '0' || str[0] > '6')
    return std::string{"unknown packet type"};
  p.type = static_cast<packet_type>(str[0]);
  size_t i = 1;
  if (p.is_binary()) {
    size_t start = i;
    while (i < str.size() && is_digit(str[i]))
      ++i;
    if (i == start || i >= str.size() || str[i] != '-' || i - start > 6)
      return std::string{"illegal attachments"};
    p.attachments = std::stoul(std::string{str.substr(start, i - start)});
    ++i;
  }
  if (i < str.size() && str[i] == '/') {
    size_t start = i;
    while (i < str.size() && str[i] != ',')
      ++i;
    p.nsp.assign(str.substr(start, i - start));
    if (i < str.size())
      ++i; // the comma
  }
  if (i < str.size() && is_digit(str[i])) {
    size_t start = i;
    while (i < str.size() && is_digit(str[i]))
      ++i;
    if (i - start > 15)
      return std::string{"invalid ack id"};
    p.id = std::stoull(std::string{str.substr(start, i - start)});
  }
  if (i < str.size()) {
    auto doc = std::make_shared<json::document>();
    if (!json::parse(*doc, str.substr(i)))
      return std::string{"invalid payload"};
    p.payload = std::move(doc);
  }
  if (!payload_valid(p.type, p.payload.get()))
    return std::string{"invalid payload"};
  return p;
}

std::string encode(packet_type type, std::string_view nsp, std::optional<uint64_t> id,
                   std::string_view payload_json, size_t attachments) {
  std::string out;
  out.reserve(8 + nsp.size() + payload_json.size());
  out.push_back('4');
  out.push_back(static_cast<char>(type));
  if (type == packet_type::binary_event || type == packet_type::binary_ack) {
    out += std::to_string(attachments);
    out.push_back('-');
  }
  if (nsp != "/") {
    out.append(nsp);
    out.push_back(',');
  }
  if (id)
    out += std::to_string(*id);
  out.append(payload_json);
  return out;
}

void append_json_string(std::string& out, std::string_view s) {
  static const char hex[] = "0123456789abcdef";
  out.push_back('"');
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(hex[c >> 4]);
          out.push_back(hex[c & 15]);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

std::string event_array(std::string_view event, std::string_view args_json) {
  std::string out;
  out.reserve(event.size() + args_json.size() + 6);
  out.push_back('[');
  append_json_string(out, event);
  if (!args_json.empty()) {
    out.push_back(',');
    out.append(args_json);
  }
  out.push_back(']');
  return out;
}

std::string to_json(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return std::string{buf.GetString(), buf.GetSize()};
}

} // namespace parley::sio
