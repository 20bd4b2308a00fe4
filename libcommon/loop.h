/* The event loop: one epoll instance, timers, signals and fd watches.
 *
 * A node owns its state in one thread, this loop's. Callbacks run one at a
 * time and must not block. libmicrohttpd and libcurl multi plug in through
 * plain fd watches and timers (see http.h), so the whole node is
 * single-threaded and needs no locks.
 *
 * Timers are caller-owned structs (as in libev): init once, arm / disarm any
 * number of times, disarm before freeing the memory. No allocation per arm.
 */
#ifndef FD_LOOP_H
#define FD_LOOP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

struct fd_loop;

typedef void (*fd_loop_fd_cb)(struct fd_loop *loop, int fd, uint32_t events,
			      void *arg);
typedef void (*fd_loop_signal_cb)(struct fd_loop *loop, int signo, void *arg);

struct fd_timer;
typedef void (*fd_timer_cb)(struct fd_loop *loop, struct fd_timer *t, void *arg);

struct fd_timer {
	int64_t deadline; /* monotonic ms */
	size_t slot;	  /* position in the loop's heap + 1; 0 = not armed */
	uint64_t seq;	  /* arming order, to keep equal deadlines FIFO */
	fd_timer_cb cb;
	void *arg;
};

/* Returns a new loop, or NULL with errno set. */
struct fd_loop *fd_loop_new(void);
/* Frees the loop (NULL does nothing). Watches and armed timers are dropped;
 * their owners must not use them afterwards. */
void fd_loop_free(struct fd_loop *loop);

/* Cached monotonic time in ms, refreshed on each loop iteration and by
 * fd_loop_update_now(). */
int64_t fd_loop_now(const struct fd_loop *loop);
int64_t fd_loop_update_now(struct fd_loop *loop);

/* Watches fd for events (EPOLLIN, EPOLLOUT, EPOLLRDHUP…); watching an fd
 * already watched replaces its events, callback and arg. EPOLLHUP/EPOLLERR
 * are always reported. Returns 0, or -1 with errno set. */
int fd_loop_watch(struct fd_loop *loop, int fd, uint32_t events,
		  fd_loop_fd_cb cb, void *arg);
/* Stops watching fd (an fd not watched is ignored). Call before close(fd). */
void fd_loop_unwatch(struct fd_loop *loop, int fd);

void fd_timer_init(struct fd_timer *t, fd_timer_cb cb, void *arg);
/* Arms t to fire once after delay_ms (re-arming moves it). Returns 0, or -1
 * with errno = ENOMEM. */
int fd_timer_arm(struct fd_loop *loop, struct fd_timer *t, int64_t delay_ms);
int fd_timer_arm_at(struct fd_loop *loop, struct fd_timer *t, int64_t deadline);
void fd_timer_disarm(struct fd_loop *loop, struct fd_timer *t);
static inline int fd_timer_armed(const struct fd_timer *t)
{
	return t->slot != 0;
}

/* Delivers signo through a signalfd: the signal is blocked for the process
 * and cb runs in the loop. Returns 0, or -1 with errno set. */
int fd_loop_signal(struct fd_loop *loop, int signo, fd_loop_signal_cb cb, void *arg);

/* Runs until fd_loop_stop(). Returns 0, or -1 with errno set when epoll
 * failed. */
int fd_loop_run(struct fd_loop *loop);
/* Runs one iteration, waiting at most max_wait_ms (-1: until something
 * happens). Returns the number of events and timers handled, or -1. */
int fd_loop_run_once(struct fd_loop *loop, int max_wait_ms);
void fd_loop_stop(struct fd_loop *loop);

#endif
