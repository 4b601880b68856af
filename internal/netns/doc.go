// Package netns runs a function on an OS thread that has entered a network
// namespace, so the sockets it creates belong to that namespace for life.
//
// Data flow:
//  1. InNetns starts a goroutine and locks it to its OS thread.
//  2. The thread opens the namespace file (/run/netns/NAME) and setns(2)s
//     into it; only this thread changes namespace.
//  3. fn runs there: socket(2) binds each new socket to the thread's
//     namespace, so the sockets keep working from any thread afterwards.
//  4. The goroutine returns still locked, so the Go runtime ends the thread
//     instead of handing a thread in a foreign namespace to other goroutines.
package netns
