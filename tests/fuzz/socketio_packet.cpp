// socketio_packet: Socket.IO v5 packets (sio::decode, net/socketio_packet.hpp)
// and what the server does with a sequence of them: namespaces, acks and
// binary attachment reassembly in sio::client (net/socketio_server.hpp), on a
// real eio::server and an eio::session without a transport, as the unit
// tests' io_fixture builds them.
//
// Input: Engine.IO message packets separated by 0x1e; one that starts with 'b'
// is a binary packet (the raw bytes after the 'b'), any other the text of a
// Socket.IO packet. Each text piece is also decoded and round-tripped alone.
#include <chrono>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <rapidjson/document.h>
#include <spdlog/spdlog.h>

#include "fuzz_check.hpp"
#include "net/engineio_server.hpp"
#include "net/json.hpp"
#include "net/socketio_packet.hpp"
#include "net/socketio_server.hpp"

using namespace parley;

namespace {

std::string payload_json(const sio::packet& p) {
  return p.payload ? sio::to_json(*p.payload) : std::string{};
}

// A decoded packet, encoded as the server encodes and decoded again, is the same packet.
void check_decode(std::string_view text) {
  auto r = sio::decode(text);
  auto* p = std::get_if<sio::packet>(&r);
  if (!p) {
    FUZZ_CHECK(!std::get<std::string>(r).empty());
    return;
  }
  FUZZ_CHECK(!text.empty() && text[0] == static_cast<char>(p->type));
  FUZZ_CHECK(!p->nsp.empty() && p->nsp[0] == '/');
  FUZZ_CHECK(p->nsp.find(',') == std::string::npos);
  FUZZ_CHECK(p->is_binary() ? p->attachments < 1000000 : p->attachments == 0);
  FUZZ_CHECK(p->buffers.empty());
  FUZZ_CHECK(!p->id || *p->id < 1000000000000000ull);
  auto json = payload_json(*p);
  auto wire = sio::encode(p->type, p->nsp, p->id, json, p->attachments);
  FUZZ_CHECK(wire.size() >= 2 && wire[0] == '4');
  auto r2 = sio::decode(std::string_view{wire}.substr(1));
  auto* q = std::get_if<sio::packet>(&r2);
  FUZZ_CHECK(q != nullptr);
  FUZZ_CHECK(q->type == p->type);
  FUZZ_CHECK(q->nsp == p->nsp);
  FUZZ_CHECK(q->id == p->id);
  FUZZ_CHECK(q->attachments == p->attachments);
  FUZZ_CHECK(payload_json(*q) == json);
}

bool is_array_json(const std::string& text) {
  rapidjson::Document d;
  return json::parse(d, text) && d.IsArray();
}

// The application above Socket.IO: "/" and "/messages" accept (unless the
// CONNECT payload has "refuse"), "/pending" never answers; events with an id
// are acknowledged, "bye" disconnects the namespace, "close" the session.
// Every socket, once accepted, waits for the client's acks 1 and 2.
struct stub_app : sio::app {
  bool has_namespace(std::string_view nsp) const override {
    return nsp == "/" || nsp == "/messages" || nsp == "/pending";
  }

  void on_connect(const std::shared_ptr<sio::socket>& s, sio::packet&& connect) override {
    FUZZ_CHECK(connect.type == sio::packet_type::connect);
    FUZZ_CHECK(has_namespace(s->nsp()) && connect.nsp == s->nsp());
    FUZZ_CHECK(!connect.payload || connect.payload->IsObject());
    if (connect.payload && connect.payload->HasMember("refuse")) {
      s->refuse("refused");
      return;
    }
    if (s->nsp() == "/pending")
      return;
    std::weak_ptr<sio::socket> weak = s;
    s->on_packet = [weak](sio::packet&& p) { on_packet(weak.lock(), std::move(p)); };
    s->on_close = [](std::string_view reason) { FUZZ_CHECK(!reason.empty()); };
    FUZZ_CHECK(!s->expect_ack(1, [](std::optional<std::string>) {}));  // not before accept()
    s->accept();
    // accept() answers on the I/O thread; what is posted after it runs after it.
    boost::asio::post(s->context(), [s] {
      for (uint64_t id : {1, 2})
        FUZZ_CHECK(s->expect_ack(id, [](std::optional<std::string> args) {
          FUZZ_CHECK(!args || is_array_json(*args));
        }));
    });
  }

  static void on_packet(const std::shared_ptr<sio::socket>& s, sio::packet&& p) {
    FUZZ_CHECK(s != nullptr);
    FUZZ_CHECK(p.nsp == s->nsp());
    FUZZ_CHECK(p.type == sio::packet_type::event || p.type == sio::packet_type::ack
               || p.type == sio::packet_type::binary_event || p.type == sio::packet_type::binary_ack);
    FUZZ_CHECK(p.buffers.size() == p.attachments);
    FUZZ_CHECK(p.is_binary() || p.buffers.empty());
    FUZZ_CHECK(p.payload && p.payload->IsArray());
    FUZZ_CHECK(!sio::to_json(*p.payload).empty());
    if (p.type != sio::packet_type::event && p.type != sio::packet_type::binary_event)
      return;
    auto& name = (*p.payload)[0];
    if (name.IsString() && std::string_view{name.GetString(), name.GetStringLength()} == "bye") {
      s->disconnect();
      return;
    }
    if (name.IsString() && std::string_view{name.GetString(), name.GetStringLength()} == "close") {
      s->close_session("server shutting down");
      return;
    }
    if (p.id)
      s->send(eio::text_frame(sio::encode(sio::packet_type::ack, s->nsp(), p.id, "[\"ok\"]")));
  }
};

struct world {
  boost::asio::io_context ioc;
  eio::server srv{ioc, eio::options{}, [](eio::session&) { return nullptr; }};
  stub_app app;
};

world& the_world() {
  static world* w = new world;
  return *w;
}

// What the server queued for the client is valid Socket.IO, every frame of it.
void check_sent(const eio::session& s, size_t& checked) {
  auto& q = s.queued();
  if (q.size() < checked)
    checked = 0; // cleared by a close
  for (; checked < q.size(); ++checked) {
    auto& f = q[checked];
    FUZZ_CHECK(f.bytes && !f.binary);
    std::string_view text = *f.bytes;
    FUZZ_CHECK(text.size() >= 2 && text[0] == '4');
    FUZZ_CHECK(std::holds_alternative<sio::packet>(sio::decode(text.substr(1))));
  }
}

void run(boost::asio::io_context& ioc) {
  // Everything posted so far, and what that posts in turn (bounded: nothing here re-posts forever).
  for (int i = 0; i < 64 && ioc.poll() > 0; ++i)
    ioc.restart();
  ioc.restart();
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  the_world();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto pieces = fuzz::split(fuzz::as_text(data, size), eio::record_separator);
  for (auto piece : pieces)
    if (piece.empty() || piece[0] != 'b')
      check_decode(piece);

  auto& w = the_world();
  auto session = std::make_shared<eio::session>(w.srv, "fuzz", eio::handshake{});
  {
    sio::client client(w.app, std::chrono::seconds(45));
    client.on_open(*session);
    size_t checked = 0;
    for (auto piece : pieces) {
      if (session->closed())
        break;
      bool binary = !piece.empty() && piece[0] == 'b';
      eio::packet p{eio::packet_type::message, binary, std::string{binary ? piece.substr(1) : piece}};
      client.on_message(*session, std::move(p));
      run(w.ioc);
      check_sent(*session, checked);
    }
    // As the session tells its handler when it closes (this one has none).
    session->close("transport close");
    client.on_close(*session, "transport close");
    run(w.ioc);
  }
  run(w.ioc); // the connect timer's cancellation
  return 0;
}
