#include "net/http_client.hpp"

#include <deque>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/url/parse.hpp>

namespace parley::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

std::variant<endpoint_url, std::string> parse_endpoint_url(std::string_view text) {
  auto r = boost::urls::parse_uri(text);
  if (!r)
    return "\"" + std::string{text} + "\" is not an absolute URL";
  endpoint_url out;
  auto scheme = std::string{r->scheme()};
  if (scheme == "https" || scheme == "wss")
    out.tls = true;
  else if (scheme != "http" && scheme != "ws")
    return "\"" + std::string{text} + "\": the scheme must be http, https, ws or wss";
  out.host = std::string{r->encoded_host()};
  if (out.host.empty())
    return "\"" + std::string{text} + "\" has no host";
  out.port = r->has_port() ? std::string{r->port()} : (out.tls ? "443" : "80");
  out.target = std::string{r->encoded_path()};
  if (out.target.empty())
    out.target = "/";
  if (r->has_query())
    out.target += "?" + std::string{r->encoded_query()};
  return out;
}

std::string merge_cookies(const std::string& jar, const std::vector<std::string>& set_cookies) {
  std::vector<std::pair<std::string, std::string>> cookies;
  auto put = [&](std::string_view pair) {
    while (!pair.empty() && pair.front() == ' ')
      pair.remove_prefix(1);
    auto eq = pair.find('=');
    if (eq == std::string_view::npos || eq == 0)
      return;
    std::string name{pair.substr(0, eq)};
    std::string value{pair.substr(eq + 1)};
    for (auto& c : cookies)
      if (c.first == name) {
        c.second = value;
        return;
      }
    cookies.emplace_back(std::move(name), std::move(value));
  };
  std::string_view rest = jar;
  while (!rest.empty()) {
    auto semi = rest.find(';');
    put(rest.substr(0, semi));
    rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
  }
  for (auto& sc : set_cookies)
    put(std::string_view{sc}.substr(0, sc.find(';')));
  std::string out;
  for (auto& c : cookies) {
    if (!out.empty())
      out += "; ";
    out += c.first + "=" + c.second;
  }
  return out;
}

namespace {

ssl::context& tls_context() {
  static ssl::context ctx = [] {
    ssl::context c{ssl::context::tls_client};
    c.set_default_verify_paths();
    c.set_verify_mode(ssl::verify_peer);
    return c;
  }();
  return ctx;
}

template <class Stream>
beast::error_code prepare_tls(Stream& s, const std::string& host) {
  if (!SSL_set_tlsext_host_name(s.native_handle(), host.c_str()))
    return {static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category()};
  s.set_verify_callback(ssl::host_name_verification(host));
  return {};
}

// -- one HTTP request -------------------------------------------------------------

template <class Stream>
class http_op : public std::enable_shared_from_this<http_op<Stream>> {
public:
  http_op(asio::io_context& ioc, endpoint_url url, http_call call, std::function<void(http_result)> done)
    : resolver_(ioc), stream_(make(ioc)), url_(std::move(url)), call_(std::move(call)),
      done_(std::move(done)) {
  }

  void run() {
    req_.method_string(call_.method);
    req_.target(url_.target);
    req_.version(11);
    req_.set(http::field::host, url_.host);
    req_.set(http::field::user_agent, "parley");
    for (auto& [k, v] : call_.headers)
      req_.set(k, v);
    if (!call_.body.empty() || call_.method == "POST" || call_.method == "PUT") {
      req_.body() = call_.body;
      req_.prepare_payload();
    }
    beast::get_lowest_layer(stream_).expires_after(call_.timeout);
    resolver_.async_resolve(url_.host, url_.port,
                            [self = this->shared_from_this()](beast::error_code ec, tcp::resolver::results_type r) {
                              self->on_resolve(ec, r);
                            });
  }

private:
  static Stream make(asio::io_context& ioc) {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>)
      return Stream{ioc};
    else
      return Stream{ioc, tls_context()};
  }

  void on_resolve(beast::error_code ec, tcp::resolver::results_type r) {
    if (ec)
      return fail("resolve " + url_.host + ": " + ec.message());
    beast::get_lowest_layer(stream_).async_connect(
      r, [self = this->shared_from_this()](beast::error_code ec, tcp::endpoint) { self->on_connect(ec); });
  }

  void on_connect(beast::error_code ec) {
    if (ec)
      return fail("connect " + url_.host + ":" + url_.port + ": " + ec.message());
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      write();
    } else {
      if (auto err = prepare_tls(stream_, url_.host))
        return fail("tls: " + err.message());
      stream_.async_handshake(ssl::stream_base::client, [self = this->shared_from_this()](beast::error_code ec) {
        if (ec)
          return self->fail("tls handshake: " + ec.message());
        self->write();
      });
    }
  }

  void write() {
    http::async_write(stream_, req_, [self = this->shared_from_this()](beast::error_code ec, size_t) {
      if (ec)
        return self->fail("write: " + ec.message());
      self->parser_.body_limit(8u << 20);
      http::async_read(self->stream_, self->buffer_, self->parser_,
                       [self](beast::error_code ec, size_t) { self->on_read(ec); });
    });
  }

  void on_read(beast::error_code ec) {
    if (ec)
      return fail("read: " + ec.message());
    auto& res = parser_.get();
    http_result out;
    out.status = static_cast<int>(res.result_int());
    out.body = std::move(res.body());
    // Every Set-Cookie, in the order received. The name test guards the
    // range: Beast 1.81 keeps same-named fields together, so it is exactly
    // the Set-Cookie fields, but equal_range is defined on the list between
    // the first and the last of them.
    auto [first, last] = res.equal_range(http::field::set_cookie);
    for (auto it = first; it != last; ++it)
      if (it->name() == http::field::set_cookie)
        out.set_cookies.emplace_back(it->value());
    finish(std::move(out));
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  void fail(std::string why) {
    http_result out;
    out.error = std::move(why);
    finish(std::move(out));
  }

  void finish(http_result r) {
    if (auto d = std::move(done_)) {
      done_ = nullptr;
      d(std::move(r));
    }
  }

  tcp::resolver resolver_;
  Stream stream_;
  endpoint_url url_;
  http_call call_;
  std::function<void(http_result)> done_;
  http::request<http::string_body> req_;
  http::response_parser<http::string_body> parser_;
  beast::flat_buffer buffer_;
};

// -- one WebSocket ----------------------------------------------------------------

template <class Next>
class ws_link_impl : public ws_link, public std::enable_shared_from_this<ws_link_impl<Next>> {
public:
  ws_link_impl(asio::io_context& ioc, endpoint_url url, std::vector<std::pair<std::string, std::string>> headers,
               std::chrono::milliseconds timeout, callbacks cb)
    : ioc_(ioc), resolver_(ioc), ws_(make(ioc)), url_(std::move(url)), headers_(std::move(headers)),
      timeout_(timeout), cb_(std::move(cb)) {
  }

  void start() {
    beast::get_lowest_layer(ws_).expires_after(timeout_);
    resolver_.async_resolve(url_.host, url_.port,
                            [self = this->shared_from_this()](beast::error_code ec, tcp::resolver::results_type r) {
                              self->on_resolve(ec, r);
                            });
  }

  void send(std::string text) override {
    asio::post(ioc_, [self = this->shared_from_this(), text = std::move(text)]() mutable {
      if (self->done_ || !self->open_)
        return;
      self->out_.push_back(std::move(text));
      self->do_write();
    });
  }

  void close() override {
    asio::post(ioc_, [self = this->shared_from_this()] {
      if (self->done_)
        return;
      if (!self->open_) {
        self->abort("closed before it opened");
        return;
      }
      self->closing_ = true;
      if (!self->writing_)
        self->do_close();
    });
  }

private:
  static websocket::stream<Next> make(asio::io_context& ioc) {
    if constexpr (std::is_same_v<Next, beast::tcp_stream>)
      return websocket::stream<Next>{ioc};
    else
      return websocket::stream<Next>{ioc, tls_context()};
  }

  void on_resolve(beast::error_code ec, tcp::resolver::results_type r) {
    if (done_)
      return;
    if (ec)
      return finish(0, "resolve " + url_.host + ": " + ec.message());
    beast::get_lowest_layer(ws_).async_connect(
      r, [self = this->shared_from_this()](beast::error_code ec, tcp::endpoint) { self->on_connect(ec); });
  }

  void on_connect(beast::error_code ec) {
    if (done_)
      return;
    if (ec)
      return finish(0, "connect " + url_.host + ":" + url_.port + ": " + ec.message());
    if constexpr (std::is_same_v<Next, beast::tcp_stream>) {
      handshake();
    } else {
      if (auto err = prepare_tls(ws_.next_layer(), url_.host))
        return finish(0, "tls: " + err.message());
      ws_.next_layer().async_handshake(ssl::stream_base::client,
                                       [self = this->shared_from_this()](beast::error_code ec) {
                                         if (ec)
                                           return self->finish(0, "tls handshake: " + ec.message());
                                         self->handshake();
                                       });
    }
  }

  void handshake() {
    if (done_)
      return;
    beast::get_lowest_layer(ws_).expires_never();
    auto to = websocket::stream_base::timeout::suggested(beast::role_type::client);
    to.handshake_timeout = timeout_;
    ws_.set_option(to);
    ws_.set_option(websocket::stream_base::decorator([headers = headers_](websocket::request_type& req) {
      req.set(http::field::user_agent, "parley");
      for (auto& [k, v] : headers)
        req.set(k, v);
    }));
    ws_.read_message_max(4u << 20);
    auto host = url_.host + ":" + url_.port;
    ws_.async_handshake(res_, host, url_.target, [self = this->shared_from_this()](beast::error_code ec) {
      self->on_handshake(ec);
    });
  }

  void on_handshake(beast::error_code ec) {
    if (done_)
      return;
    if (ec) {
      int status = ec == websocket::error::upgrade_declined ? static_cast<int>(res_.result_int()) : 0;
      return finish(status, status ? "upgrade refused with HTTP " + std::to_string(status)
                                   : "handshake: " + ec.message());
    }
    open_ = true;
    if (cb_.on_open)
      cb_.on_open();
    do_read();
  }

  void do_read() {
    ws_.async_read(buffer_, [self = this->shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (done_)
      return;
    if (ec) {
      if (ec == websocket::error::closed) {
        auto r = ws_.reason();
        return finish(0, "closed by the server (code " + std::to_string(r.code) + (r.reason.empty() ? "" : ", ")
                           + std::string{r.reason.c_str()} + ")");
      }
      return finish(0, closing_ ? "closed" : "connection lost: " + ec.message());
    }
    auto text = beast::buffers_to_string(buffer_.data());
    buffer_.consume(buffer_.size());
    if (cb_.on_text)
      cb_.on_text(std::move(text));
    if (!done_)
      do_read();
  }

  void do_write() {
    if (writing_ || out_.empty() || done_)
      return;
    writing_ = true;
    ws_.text(true);
    ws_.async_write(asio::buffer(out_.front()), [self = this->shared_from_this()](beast::error_code ec, size_t) {
      self->writing_ = false;
      if (self->done_)
        return;
      if (ec)
        return self->finish(0, "write: " + ec.message());
      self->out_.pop_front();
      if (self->closing_ && self->out_.empty())
        return self->do_close();
      self->do_write();
    });
  }

  void do_close() {
    ws_.async_close(websocket::close_code::normal, [self = this->shared_from_this()](beast::error_code) {
      self->finish(0, "closed");
    });
  }

  void abort(std::string why) {
    beast::error_code ignored;
    resolver_.cancel();
    beast::get_lowest_layer(ws_).socket().close(ignored);
    finish(0, std::move(why));
  }

  void finish(int status, std::string reason) {
    if (done_)
      return;
    done_ = true;
    open_ = false;
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
    if (auto f = std::move(cb_.on_close))
      f(status, std::move(reason));
    cb_ = {};
  }

  asio::io_context& ioc_;
  tcp::resolver resolver_;
  websocket::stream<Next> ws_;
  endpoint_url url_;
  std::vector<std::pair<std::string, std::string>> headers_;
  std::chrono::milliseconds timeout_;
  callbacks cb_;
  websocket::response_type res_;
  beast::flat_buffer buffer_;
  std::deque<std::string> out_;
  bool open_ = false;
  bool writing_ = false;
  bool closing_ = false;
  bool done_ = false;
};

} // namespace

void http_fetch(asio::io_context& ioc, http_call call, std::function<void(http_result)> done) {
  auto parsed = parse_endpoint_url(call.url);
  if (auto err = std::get_if<std::string>(&parsed)) {
    asio::post(ioc, [done = std::move(done), err = *err] {
      http_result r;
      r.error = err;
      done(std::move(r));
    });
    return;
  }
  auto url = std::get<endpoint_url>(std::move(parsed));
  asio::post(ioc, [&ioc, url = std::move(url), call = std::move(call), done = std::move(done)]() mutable {
    if (url.tls)
      std::make_shared<http_op<beast::ssl_stream<beast::tcp_stream>>>(ioc, std::move(url), std::move(call),
                                                                     std::move(done))
        ->run();
    else
      std::make_shared<http_op<beast::tcp_stream>>(ioc, std::move(url), std::move(call), std::move(done))->run();
  });
}

std::shared_ptr<ws_link> ws_connect(asio::io_context& ioc, const endpoint_url& url,
                                    std::vector<std::pair<std::string, std::string>> headers,
                                    std::chrono::milliseconds timeout, ws_link::callbacks cb) {
  if (url.tls) {
    auto l = std::make_shared<ws_link_impl<beast::ssl_stream<beast::tcp_stream>>>(ioc, url, std::move(headers),
                                                                                  timeout, std::move(cb));
    asio::post(ioc, [l] { l->start(); });
    return l;
  }
  auto l = std::make_shared<ws_link_impl<beast::tcp_stream>>(ioc, url, std::move(headers), timeout, std::move(cb));
  asio::post(ioc, [l] { l->start(); });
  return l;
}

} // namespace parley::net
