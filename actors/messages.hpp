// The messages Parley's actors exchange, declared once.
//
//   connection ──join/leave──▶ directory shard ──▶ room   (replies: joined_atom, room)
//   connection / api / presence ──publish──▶ directory shard ──▶ room ──▶ I/O fan-out
//   room ──empty──▶ directory shard ──(stop)──▶ room
//   connection ──online/offline──▶ presence ──publish──▶ "nsp:*" rooms
//   rtm supervisor ──▶ rtm upstream (one per profile) ──r_event──▶ dedup ──▶ translator ──publish──▶ rooms
//   api ──join/leave/disconnect of a user──▶ presence ──▶ each of the user's connections
//       (each answers once done) ──▶ presence answers with how many did
//   api ──members──▶ directory shard ──▶ room ──▶ (sockets, sorted user ids)
//   api ──publish+ack──▶ directory shard ──▶ room ──▶ I/O: each receiver's ACK
//       ──▶ ack collector (expect_atom n, then ack_atom per answer) ──▶ HTTP reply
//
// Local-only payloads (sockets, parsed packets) are whitelisted as unsafe
// message types: they never cross a node boundary.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>

#include "config/settings.hpp"
#include "net/socketio_server.hpp"
#include "schema/rtm.hpp"

namespace parley {

using socket_ptr = std::shared_ptr<sio::socket>;
using packet_ptr = std::shared_ptr<sio::packet>;
// Binary attachments of a packet, shared by every receiver.
using buffers = std::vector<std::shared_ptr<const std::string>>;

// Atoms: at most 10 characters, kept in Parley's namespace.
using join_atom = caf::atom_constant<caf::atom("p_join")>;
using leave_atom = caf::atom_constant<caf::atom("p_leave")>;
using joined_atom = caf::atom_constant<caf::atom("p_joined")>;
using publish_atom = caf::atom_constant<caf::atom("p_publish")>;
using empty_atom = caf::atom_constant<caf::atom("p_empty")>;
using stop_atom = caf::atom_constant<caf::atom("p_stop")>;
using online_atom = caf::atom_constant<caf::atom("p_online")>;
using offline_atom = caf::atom_constant<caf::atom("p_offline")>;
using presence_atom = caf::atom_constant<caf::atom("p_presence")>;
using packet_atom = caf::atom_constant<caf::atom("p_packet")>;
using closed_atom = caf::atom_constant<caf::atom("p_closed")>;
using count_atom = caf::atom_constant<caf::atom("p_count")>;
using members_atom = caf::atom_constant<caf::atom("p_members")>;
using restart_atom = caf::atom_constant<caf::atom("p_restart")>;
using ack_atom = caf::atom_constant<caf::atom("p_ack")>;
using expect_atom = caf::atom_constant<caf::atom("p_expect")>;
using timeout_atom = caf::atom_constant<caf::atom("p_timeout")>;
using rejoin_atom = caf::atom_constant<caf::atom("p_rejoin")>;
using kill_atom = caf::atom_constant<caf::atom("p_kill")>;
using adopt_atom = caf::atom_constant<caf::atom("p_adopt")>;
using disconnect_atom = caf::atom_constant<caf::atom("p_disconn")>;
using room_moved_atom = caf::atom_constant<caf::atom("p_moved")>;
using top_atom = caf::atom_constant<caf::atom("p_top")>;
// RTM upstream
using rtm_open_atom = caf::atom_constant<caf::atom("r_open")>;
using rtm_frame_atom = caf::atom_constant<caf::atom("r_frame")>;
using rtm_closed_atom = caf::atom_constant<caf::atom("r_closed")>;
using rtm_login_atom = caf::atom_constant<caf::atom("r_login")>;
using rtm_client_atom = caf::atom_constant<caf::atom("r_client")>;
using rtm_event_atom = caf::atom_constant<caf::atom("r_event")>;
using rtm_status_atom = caf::atom_constant<caf::atom("r_status")>;
using rtm_metrics_atom = caf::atom_constant<caf::atom("r_metrics")>;
using retry_atom = caf::atom_constant<caf::atom("r_retry")>;
using watchdog_atom = caf::atom_constant<caf::atom("r_watchdog")>;
using deadline_atom = caf::atom_constant<caf::atom("r_deadline")>;
using put_atom = caf::atom_constant<caf::atom("r_put")>;
using delete_atom = caf::atom_constant<caf::atom("r_delete")>;
// The message log
using store_append_atom = caf::atom_constant<caf::atom("s_append")>;
using store_history_atom = caf::atom_constant<caf::atom("s_history")>;
using store_flush_atom = caf::atom_constant<caf::atom("s_flush")>;
using store_trim_atom = caf::atom_constant<caf::atom("s_trim")>;
using store_open_atom = caf::atom_constant<caf::atom("s_open")>;
using session_write_atom = caf::atom_constant<caf::atom("s_swrite")>;
using session_close_atom = caf::atom_constant<caf::atom("s_sclose")>;
using session_take_atom = caf::atom_constant<caf::atom("s_stake")>;
using replay_atom = caf::atom_constant<caf::atom("s_replay")>;

// The prefix of the room every socket of a namespace is in ("nsp:/messages").
inline std::string namespace_room(const std::string& nsp) {
  return "nsp:" + nsp;
}

} // namespace parley

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(parley::socket_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(parley::packet_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(parley::buffers)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(parley::sio::delivered_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(parley::rtm::event_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(parley::rtm_profile)
