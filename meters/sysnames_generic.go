//go:build !amd64

package meters

// archSyscalls: the asm-generic architectures (arm64, riscv64) have no
// syscall beyond commonSyscalls that these servers make.
var archSyscalls []sysName
