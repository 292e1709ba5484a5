#include "schema/rtm.hpp"

#include <rapidjson/error/en.h>

#include "net/json.hpp"
#include "net/socketio_packet.hpp"

namespace parley::rtm {

namespace {

using rapidjson::Value;

const Value* member(const Value& v, const char* name) {
  if (!v.IsObject())
    return nullptr;
  auto it = v.FindMember(name);
  return it == v.MemberEnd() ? nullptr : &it->value;
}

const Value* path(const Value& v, std::initializer_list<const char*> names) {
  const Value* at = &v;
  for (auto n : names) {
    at = member(*at, n);
    if (!at)
      return nullptr;
  }
  return at;
}

bool is_id(const Value* v) {
  return v && ((v->IsString() && v->GetStringLength() > 0) || v->IsInt64() || v->IsUint64());
}

std::string id_text(const Value& v) {
  if (v.IsString())
    return {v.GetString(), v.GetStringLength()};
  if (v.IsInt64())
    return std::to_string(v.GetInt64());
  return std::to_string(v.GetUint64());
}

std::string json_or_null(const Value* v) {
  return v ? sio::to_json(*v) : std::string{"null"};
}

std::string str(std::string_view s) {
  std::string out;
  sio::append_json_string(out, s);
  return out;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x110000) {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// The partner of a dialog event that names a user and an interlocutor: the
// one who is not the profile.
void set_partner(event& e, const Value& user, const Value& interlocutor) {
  if (id_text(interlocutor) == e.profile) {
    e.interlocutor = id_text(user);
    e.interlocutor_json = sio::to_json(user);
  } else {
    e.interlocutor = id_text(interlocutor);
    e.interlocutor_json = sio::to_json(interlocutor);
  }
  e.dialog_id = e.profile + "-" + e.interlocutor;
}

std::string missing(const std::string& type, const std::string& what) {
  return type + " without " + what;
}

bool is_message_type(const std::string& t) {
  return t == "chat_MessageNew" || t == "chat_MessageSent" || t == "MessageNew" || t == "MessageSent";
}

bool is_limit_type(const std::string& t) {
  return t == "chat_DialogLimitChanged" || t == "platform_CorrespondenceLimitChanged";
}

} // namespace

std::variant<frame, std::string> parse_frame(const std::string& text) {
  auto doc = std::make_shared<rapidjson::Document>();
  std::string why;
  if (!json::parse(*doc, text, &why))
    return "invalid JSON: " + why;
  if (!doc->IsObject())
    return std::string{"frame is not a JSON object"};
  frame f;
  if (doc->ObjectEmpty()) {
    f.kind = frame_kind::ping;
  } else if (auto push = member(*doc, "push")) {
    auto data = path(*push, {"pub", "data"});
    if (!data || !data->IsObject())
      return std::string{"push without pub.data"};
    f.kind = frame_kind::push;
    f.data = data;
  } else if (auto c = member(*doc, "connect"); c && member(*doc, "id")) {
    f.kind = frame_kind::connect_reply;
    if (auto p = member(*c, "ping"); p && p->IsInt64())
      f.ping_seconds = p->GetInt64();
  } else if (auto err = member(*doc, "error")) {
    f.kind = frame_kind::error_reply;
    f.error = sio::to_json(*err);
  } else {
    f.kind = frame_kind::other_reply;
  }
  f.doc = std::move(doc);
  return f;
}

const char* internal_name(event_kind k) {
  switch (k) {
    case event_kind::message_new: return "rtm.message.new";
    case event_kind::email_new: return "rtm.email.new";
    case event_kind::message_read: return "rtm.message.read";
    case event_kind::dialog_limit_changed: return "rtm.dialog.limit.changed";
    case event_kind::typing: return "rtm.typing";
    case event_kind::other: return "rtm.message";
  }
  return "rtm.message";
}

// The id, sender and recipient of a message or an email (field names per
// kind), and from them who the partner is and the dialog id.
struct party_keys {
  const char* id;
  const char* from;
  const char* to;
};
static std::optional<std::string> read_parties(event& e, const Value& obj, const char* what, party_keys k,
                                        const std::string& profile) {
  auto id = member(obj, k.id);
  auto from = member(obj, k.from);
  auto to = member(obj, k.to);
  for (auto [v, key] : {std::pair{id, k.id}, std::pair{from, k.from}, std::pair{to, k.to}})
    if (!is_id(v))
      return missing(e.upstream_type, std::string{what} + "." + key);
  e.id = id_text(*id);
  e.id_json = sio::to_json(*id);
  e.from_json = sio::to_json(*from);
  e.to_json = sio::to_json(*to);
  e.from_self = id_text(*from) == profile;
  auto& partner = e.from_self ? *to : *from;
  e.interlocutor = id_text(partner);
  e.interlocutor_json = sio::to_json(partner);
  e.dialog_id = profile + "-" + e.interlocutor;
  return std::nullopt;
}

std::variant<event, std::string> parse_event(const Value& data, const std::string& profile) {
  auto type = member(data, "type");
  if (!type || !type->IsString())
    return std::string{"event without a type"};
  event e;
  e.profile = profile;
  e.upstream_type.assign(type->GetString(), type->GetStringLength());
  e.data_json = sio::to_json(data);
  auto& t = e.upstream_type;
  if (is_message_type(t)) {
    auto msg = path(data, {"data", "message"});
    if (!msg)
      msg = member(data, "message");
    if (!msg || !msg->IsObject())
      return missing(t, "data.message");
    if (auto err = read_parties(e, *msg, "message", {"id", "idUserFrom", "idUserTo"}, profile))
      return *err;
    e.kind = event_kind::message_new;
    auto mt = member(*msg, "type");
    e.message_type = mt && mt->IsString() ? std::string{mt->GetString(), mt->GetStringLength()} : "text";
    auto content = member(*msg, "content");
    e.content_json = json_or_null(content);
    const Value* body = nullptr;
    if (content && content->IsObject()) {
      body = member(*content, "message");
      if (!body || !body->IsString())
        body = member(*content, "text");
    } else if (content && content->IsString()) {
      body = content;
    }
    if (body && body->IsString())
      e.text = html_to_text({body->GetString(), body->GetStringLength()});
    else
      e.text = "[" + e.message_type + "]";
    e.date_created_json = json_or_null(member(*msg, "dateCreated"));
    return e;
  }
  if (t == "email") {
    auto mail = member(data, "email");
    if (!mail)
      mail = path(data, {"data", "email"});
    if (!mail || !mail->IsObject())
      return missing(t, "data.email");
    if (auto err = read_parties(e, *mail, "email", {"id", "id_user_from", "id_user_to"}, profile))
      return *err;
    e.kind = event_kind::email_new;
    e.correspondence_json = json_or_null(member(*mail, "id_correspondence"));
    e.title_json = json_or_null(member(*mail, "title"));
    if (auto c = member(*mail, "content"); c && c->IsString())
      e.text = html_to_text({c->GetString(), c->GetStringLength()});
    e.content_json = json_or_null(member(*mail, "content"));
    e.date_created_json = json_or_null(member(*mail, "dateCreated"));
    return e;
  }
  if (t == "chat_MessageRead") {
    auto d = member(data, "data");
    auto who = d ? member(*d, "idInterlocutor") : nullptr;
    auto msg = d ? member(*d, "idMessage") : nullptr;
    if (!is_id(who))
      return missing(t, "data.idInterlocutor");
    if (!is_id(msg))
      return missing(t, "data.idMessage");
    e.kind = event_kind::message_read;
    e.id = id_text(*msg);
    e.id_json = sio::to_json(*msg);
    e.interlocutor = id_text(*who);
    e.interlocutor_json = sio::to_json(*who);
    e.dialog_id = profile + "-" + e.interlocutor;
    return e;
  }
  if (t == "chat_DialogTyping" || is_limit_type(t)) {
    auto d = member(data, "data");
    auto user = d ? member(*d, "idUser") : nullptr;
    auto who = d ? member(*d, "idInterlocutor") : nullptr;
    if (!is_id(user))
      return missing(t, "data.idUser");
    if (!is_id(who))
      return missing(t, "data.idInterlocutor");
    e.user_json = sio::to_json(*user);
    e.raw_interlocutor_json = sio::to_json(*who);
    set_partner(e, *user, *who);
    if (t == "chat_DialogTyping") {
      e.kind = event_kind::typing;
      return e;
    }
    auto left = member(*d, "limitLeft");
    if (!left)
      return missing(t, "data.limitLeft");
    e.kind = event_kind::dialog_limit_changed;
    e.limit_left_json = sio::to_json(*left);
    return e;
  }
  e.kind = event_kind::other;
  return e;
}

std::string dedup_key(const event& e) {
  switch (e.kind) {
    case event_kind::message_new: return e.profile + ":m:" + e.id;
    case event_kind::email_new: return e.profile + ":e:" + e.id;
    default: return {};
  }
}

std::string html_to_text(std::string_view html) {
  std::string out;
  bool space = false;
  auto put = [&](std::string_view s) {
    for (char c : s) {
      if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
        space = !out.empty();
        continue;
      }
      if (space) {
        out += ' ';
        space = false;
      }
      out += c;
    }
  };
  for (size_t i = 0; i < html.size();) {
    char c = html[i];
    if (c == '<') {
      auto end = html.find('>', i);
      if (end == std::string_view::npos)
        break;
      space = !out.empty(); // a tag separates words (<br>, </p>, ...)
      i = end + 1;
      continue;
    }
    if (c == '&') {
      auto end = html.find(';', i);
      if (end != std::string_view::npos && end - i <= 10) {
        auto name = html.substr(i + 1, end - i - 1);
        std::string decoded;
        if (name == "amp") decoded = "&";
        else if (name == "lt") decoded = "<";
        else if (name == "gt") decoded = ">";
        else if (name == "quot") decoded = "\"";
        else if (name == "apos" || name == "#39") decoded = "'";
        else if (name == "nbsp") decoded = " ";
        else if (name.size() > 1 && name[0] == '#') {
          uint32_t cp = 0;
          bool hex = name[1] == 'x' || name[1] == 'X';
          try {
            cp = static_cast<uint32_t>(std::stoul(std::string{name.substr(hex ? 2 : 1)}, nullptr, hex ? 16 : 10));
          } catch (...) {
            cp = 0;
          }
          if (cp)
            append_utf8(decoded, cp);
        }
        if (!decoded.empty()) {
          put(decoded);
          i = end + 1;
          continue;
        }
      }
    }
    put(std::string_view{&html[i], 1});
    ++i;
  }
  return out;
}

std::string preview_of(std::string_view text, size_t max) {
  size_t chars = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      if (chars == max)
        return std::string{text.substr(0, i)} + "…";
      ++chars;
    }
  }
  return std::string{text};
}

client_info parse_client(const std::string& body) {
  client_info out;
  rapidjson::Document doc;
  if (!json::parse(doc, body) || !doc.IsObject())
    return out;
  const Value* at = &doc;
  if (!member(doc, "name"))
    if (auto d = member(doc, "data"); d && d->IsObject())
      at = d;
  if (auto n = member(*at, "name"); n && n->IsString())
    out.name_json = sio::to_json(*n);
  if (auto a = member(*at, "avatar"); a && a->IsString())
    out.avatar_json = sio::to_json(*a);
  return out;
}

std::vector<delivery> deliveries(const event& e, const client_info& client) {
  std::vector<delivery> out;
  auto profile_room = "profile:" + e.profile;
  auto dialog_room = "dialog:" + e.dialog_id;
  switch (e.kind) {
    case event_kind::message_new: {
      auto toast = "{\"messageId\":" + e.id_json + ",\"idUserFrom\":" + e.from_json + ",\"idUserTo\":"
                   + e.to_json + ",\"dateCreated\":" + e.date_created_json
                   + ",\"type\":\"new_message\",\"dialogId\":" + str(e.dialog_id)
                   + ",\"clientName\":" + client.name_json + ",\"clientAvatar\":" + client.avatar_json
                   + ",\"preview\":" + str(preview_of(e.text)) + ",\"fromSelf\":" + (e.from_self ? "true" : "false")
                   + "}";
      out.push_back({{profile_room}, "message_toast", std::move(toast)});
      auto msg = "{\"id\":" + e.id_json + ",\"idUserFrom\":" + e.from_json + ",\"idUserTo\":" + e.to_json
                 + ",\"type\":" + str(e.message_type) + ",\"content\":" + e.content_json
                 + ",\"message\":" + str(e.text) + ",\"dateCreated\":" + e.date_created_json + "}";
      out.push_back({{dialog_room}, "message", std::move(msg)});
      break;
    }
    case event_kind::email_new: {
      auto toast = "{\"messageId\":" + e.id_json + ",\"idUserFrom\":" + e.from_json + ",\"idUserTo\":"
                   + e.to_json + ",\"dateCreated\":" + e.date_created_json
                   + ",\"type\":\"new_email\",\"dialogId\":" + str(e.dialog_id)
                   + ",\"correspondenceId\":" + e.correspondence_json + ",\"title\":" + e.title_json
                   + ",\"clientName\":" + client.name_json + ",\"clientAvatar\":" + client.avatar_json
                   + ",\"preview\":" + str(preview_of(e.text)) + ",\"fromSelf\":" + (e.from_self ? "true" : "false")
                   + "}";
      out.push_back({{profile_room}, "message_toast", std::move(toast)});
      break;
    }
    case event_kind::message_read: {
      auto body = "{\"messageId\":" + e.id_json + ",\"idInterlocutor\":" + e.interlocutor_json
                  + ",\"dialogId\":" + str(e.dialog_id) + "}";
      out.push_back({{dialog_room, profile_room}, "message_read", std::move(body)});
      break;
    }
    case event_kind::dialog_limit_changed: {
      auto body = "{\"idUser\":" + e.user_json + ",\"idInterlocutor\":" + e.raw_interlocutor_json
                  + ",\"limitLeft\":" + e.limit_left_json + ",\"dialogId\":" + str(e.dialog_id) + "}";
      out.push_back({{dialog_room, profile_room}, "dialog_limit_changed", std::move(body)});
      break;
    }
    case event_kind::typing: {
      auto body = "{\"dialogId\":" + str(e.dialog_id) + ",\"idUser\":" + e.user_json
                  + ",\"idInterlocutor\":" + e.raw_interlocutor_json + ",\"isTyping\":true}";
      out.push_back({{dialog_room, profile_room}, "typing", std::move(body)});
      break;
    }
    case event_kind::other: {
      auto body = "{\"profileId\":" + str(e.profile) + ",\"type\":" + str(e.upstream_type)
                  + ",\"data\":" + e.data_json + "}";
      out.push_back({{profile_room}, "rtm.message", std::move(body)});
      break;
    }
  }
  return out;
}

} // namespace parley::rtm
