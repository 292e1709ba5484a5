// The RTM upstream's wire format (a Centrifugo-protocol JSON server, e.g.
// TalkyTimes) and its translation into Parley's internal RTM events and the
// payloads seed 000's frontend expects.
//
//   {"id":1,"connect":{...}}                                   connect reply
//   {}                                                         ping (answer {})
//   {"id":N,"error":{...}}                                     error reply
//   {"push":{"channel":"personal:..","pub":{"data":{"type":T,...}}}}   an event
#pragma once

#include <memory>
#include <string>
#include <variant>
#include <vector>

#include <rapidjson/document.h>

namespace parley::rtm {

enum class frame_kind { connect_reply, ping, error_reply, other_reply, push };

struct frame {
  frame_kind kind = frame_kind::other_reply;
  int64_t ping_seconds = 0;  // from the connect reply, 0 when none
  std::string error;         // error reply, as JSON text
  std::shared_ptr<rapidjson::Document> doc; // the whole frame
  const rapidjson::Value* data = nullptr;   // push: pub.data (inside doc)
};

// Classifies one text frame; the error text says what is wrong with a malformed one.
std::variant<frame, std::string> parse_frame(const std::string& text);

// The internal RTM events (what seed 000 calls rtm.message.new etc.).
enum class event_kind { message_new, email_new, message_read, dialog_limit_changed, typing, other };
const char* internal_name(event_kind k);

// One upstream event, for one profile, with ids kept as the JSON they came as
// (numbers stay numbers) and as text (for room names and keys).
struct event {
  event_kind kind = event_kind::other;
  std::string profile;          // the profile whose upstream delivered it
  std::string upstream_type;    // chat_MessageNew, email, ...
  std::string id, id_json;      // message / email id (read: the message read)
  std::string from_json, to_json;
  std::string interlocutor, interlocutor_json; // the dialog partner
  std::string dialog_id;        // {profile}-{interlocutor}
  bool from_self = false;       // the profile itself sent it
  std::string message_type;     // text, photo, sticker, ...
  std::string content_json = "null";
  std::string text;             // plain text of the message or email
  std::string date_created_json = "null";
  std::string correspondence_json, title_json; // emails
  std::string user_json, raw_interlocutor_json, limit_left_json; // typing, limits: as they came
  std::string data_json;        // pub.data as it came (generic events)
  std::string cookies;          // the upstream's session, for the profile API
};

using event_ptr = std::shared_ptr<const event>;

// Reads pub.data of a push for `profile`; the error text names the missing field.
std::variant<event, std::string> parse_event(const rapidjson::Value& data, const std::string& profile);

// Dedup key ("" when the kind is not de-duplicated): messages by id, emails by email id.
std::string dedup_key(const event& e);

// Plain text of an HTML fragment (tags dropped, common entities decoded,
// whitespace collapsed), and a preview cut at `max` characters (UTF-8 safe).
std::string html_to_text(std::string_view html);
std::string preview_of(std::string_view text, size_t max = 100);

// Client details for a toast; JSON values ("null" when unknown).
struct client_info {
  std::string name_json = "null";
  std::string avatar_json = "null";
};

// Reads {"name","avatar"} (top level or under "data") of the profile API's answer.
client_info parse_client(const std::string& body);

// The Socket.IO deliveries an event turns into.
// One event for one or more rooms (a socket in several of them gets it once).
struct delivery {
  std::vector<std::string> rooms;
  std::string event;
  std::string data_json;
};
std::vector<delivery> deliveries(const event& e, const client_info& client);

} // namespace parley::rtm
