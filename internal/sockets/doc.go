// Package sockets makes the listening sockets the kernel-socket backends
// (epoll, io_uring) serve from, so both bind the same way.
//
//  1. Listen creates an IPv4 TCP or UDP socket, sets SO_REUSEADDR (TCP) and, for
//     a server with several loops, SO_REUSEPORT (the kernel spreads flows
//     over the loops' sockets);
//  2. binds it (port 0: the kernel picks) and, for TCP, listens;
//  3. returns the fd and the port it is bound to. A failed step closes the
//     socket.
package sockets
