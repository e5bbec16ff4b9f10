/* LD_PRELOAD shim for extrace (0.7), which never sends IGNORE and handles no signal at all: any
 * stop kills it with its listener still registered in the kernel (until reboot). This is
 * unsubscribe.c (IGNORE on the program's own connector socket when it closes it or exits) plus
 * a SIGTERM handler, installed before main(), that sends that IGNORE and exits 0. extrace
 * flushes its output after every line, so nothing it printed is lost. A program that installs
 * its own SIGTERM handler replaces this one. Nothing on the receive path is touched.
 * Built with the vendored headers:
 * gcc -O2 -shared -fPIC -I headers benchmarks/unsubscribe_sigterm.c -ldl */
#include "unsubscribe.c" /* first: it defines _GNU_SOURCE before any system header */

#include <signal.h>
#include <unistd.h>

static void on_sigterm(int number) {
	(void)number;
	ignore(); /* sendto: async-signal-safe */
	_exit(0);
}

__attribute__((constructor)) static void install(void) {
	struct sigaction action;
	memset(&action, 0, sizeof(action));
	action.sa_handler = on_sigterm;
	sigemptyset(&action.sa_mask);
	sigaction(SIGTERM, &action, NULL);
}
