/* Thread groups whose leader does not end last, for tests/test_wait_live.py.
 * Usage: thread_shapes MODE. Reads a line from stdin first (the go-ahead), then:
 *   leader-first  a thread sleeps 0.5 s then calls exit(5); the main thread calls pthread_exit
 *   late-threads  two threads start now; the main thread calls pthread_exit; one thread calls
 *                 pthread_exit after 0.2 s, the other exit(7) after 0.6 s
 *   thread-exec   a thread (not the leader) execs /bin/sh -c 'exit 6' after 0.2 s
 *   slow          a thread sleeps 1.5 s then calls exit(5); the main thread calls pthread_exit
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct plan {
    long ms;
    int status; /* for exit(); -1: pthread_exit; -2: exec */
};

static void *run(void *arg) {
    const struct plan *plan = arg;
    struct timespec left = {plan->ms / 1000, (plan->ms % 1000) * 1000000L};
    while (nanosleep(&left, &left) != 0) {}
    if (plan->status == -1) pthread_exit(NULL);
    if (plan->status == -2) {
        execl("/bin/sh", "sh", "-c", "exit 6", (char *)NULL);
        _exit(99);
    }
    exit(plan->status);
}

static void start(const struct plan *plan) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, run, (void *)plan) != 0) _exit(98);
}

int main(int argc, char **argv) {
    static const struct plan five = {500, 5}, leave = {200, -1}, seven = {600, 7},
                             exec_sh = {200, -2}, slow = {1500, 5};
    char line[16];
    if (argc != 2 || !fgets(line, sizeof line, stdin)) return 97;
    if (!strcmp(argv[1], "leader-first")) {
        start(&five);
    } else if (!strcmp(argv[1], "late-threads")) {
        start(&leave);
        start(&seven);
    } else if (!strcmp(argv[1], "thread-exec")) {
        start(&exec_sh);
        for (;;) pause();
    } else if (!strcmp(argv[1], "slow")) {
        start(&slow);
    } else {
        return 96;
    }
    pthread_exit(NULL);
}
