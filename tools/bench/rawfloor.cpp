// build/rawfloor N ROUNDS GAP_MS: the floor of one loopback write per delivery on this
// machine. N TCP connections over 127.0.0.1, the writer on core 0, an epoll reader on
// core 1; ROUNDS times one 150-byte send() to every connection, GAP_MS apart. Prints the
// writer's CPU per write and the time one round takes (what "last member reached"
// cannot go below with one write per member from one core). tools/bench/run prints it.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>
int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: rawfloor N ROUNDS GAP_MS\n");
    return 2;
  }
  int N = atoi(argv[1]), R = atoi(argv[2]), GAP = atoi(argv[3]);
  int l = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{}; a.sin_family = AF_INET; a.sin_addr.s_addr = htonl(0x7f000001);
  bind(l, (sockaddr*)&a, sizeof a); listen(l, 4096);
  socklen_t al = sizeof a; getsockname(l, (sockaddr*)&a, &al);
  std::vector<int> cl(N), sv(N);
  int one = 1;
  for (int i = 0; i < N; ++i) {
    cl[i] = socket(AF_INET, SOCK_STREAM, 0);
    connect(cl[i], (sockaddr*)&a, sizeof a);
    sv[i] = accept(l, nullptr, nullptr);
    setsockopt(sv[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  std::atomic<long> got{0};
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    cpu_set_t set; CPU_ZERO(&set); CPU_SET(1, &set); sched_setaffinity(0, sizeof set, &set);
    int ep = epoll_create1(0);
    for (int i = 0; i < N; ++i) { epoll_event e{}; e.events = EPOLLIN; e.data.fd = cl[i]; epoll_ctl(ep, EPOLL_CTL_ADD, cl[i], &e); }
    char buf[65536]; epoll_event evs[512];
    while (!stop) {
      int n = epoll_wait(ep, evs, 512, 10);
      for (int k = 0; k < n; ++k) { auto r = read(evs[k].data.fd, buf, sizeof buf); if (r > 0) got += r; }
    }
  });
  cpu_set_t set; CPU_ZERO(&set); CPU_SET(0, &set); sched_setaffinity(0, sizeof set, &set);
  char msg[150]; for (auto& c : msg) c = 'x';
  rusage r0, r1; getrusage(RUSAGE_THREAD, &r0);
  double spread = 0;
  for (int k = 0; k < R; ++k) {
    auto s = std::chrono::steady_clock::now();
    for (int i = 0; i < N; ++i) send(sv[i], msg, sizeof msg, MSG_NOSIGNAL);
    spread += std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - s).count();
    if (GAP) std::this_thread::sleep_for(std::chrono::milliseconds(GAP));
  }
  getrusage(RUSAGE_THREAD, &r1);
  auto us = [](rusage& r) { return r.ru_utime.tv_sec * 1e6 + r.ru_utime.tv_usec + r.ru_stime.tv_sec * 1e6 + r.ru_stime.tv_usec; };
  printf("N=%d rounds=%d gap=%dms: writer CPU %.2f us/write, one round (all N written) %.2f ms\n", N, R, GAP, (us(r1) - us(r0)) / (double(N) * R), spread / R / 1000);
  stop = true; reader.join();
}
