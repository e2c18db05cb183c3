/*
 * hal.h - the hardware abstraction layer of the loyalty module.
 *
 * Every device the library uses (a card reader, a clock, the network link, a
 * key store, a receipt printer or customer display) is a table of functions
 * over a context, as sqlite3_vfs is: a struct that starts with `int version`
 * and the context, then function pointers that take the context first. The
 * application fills the tables (with the Linux implementations declared at
 * the end of this header, with the simulators of hal/sim/, or with its own)
 * and hands them to the library when it opens a handle. The library keeps no
 * global device.
 *
 * Versions. Each table has a LOY_HAL_*_VERSION constant. Slots are only ever
 * appended: a table of version N has every slot of versions 1..N, so the
 * library reads a slot only when the table's version says it is there, and a
 * table newer than the library works with it unchanged (its later slots go
 * unused). A version below 1 is refused (loy_hal_check()).
 *
 * Return values. Functions that return int return a non-negative value on
 * success (0, or 1 where said) and a negative loy_hal_error on failure. They
 * are not loy_status values: the library maps them (a key store failure to
 * LOY_E_STORAGE, a link failure to LOY_E_NETWORK, and so on).
 *
 * Threads. The library calls each device from one thread at a time, with two
 * exceptions a device must allow: the clock's functions are called from any
 * thread at any time, and the link's is_up() may be called while another
 * thread is blocked in its wait_change(). No function may call back into the
 * library. read_scan() and wait_change() block for at most timeout_ms; the
 * others are expected to return promptly (a file write and its fsync).
 *
 * Pure C99: this header compiles as C and as C++.
 */
#ifndef LOYALTY_HAL_H
#define LOYALTY_HAL_H

#include "export.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * \brief Failures of a HAL function, always negative. Append only: a value is
 * never renumbered or removed, new ones are added last (more negative).
 */
typedef enum loy_hal_error {
	LOY_HAL_E_IO = -1,          /**< the device or the OS failed; it may work again */
	LOY_HAL_E_ARGUMENT = -2,    /**< NULL, a bad name, a line with a newline, ... */
	LOY_HAL_E_NOT_FOUND = -3,   /**< key store: no item of that name */
	LOY_HAL_E_TOO_BIG = -4,     /**< key store: the buffer is too small (*len = size needed) */
	LOY_HAL_E_GONE = -5,        /**< the device went away (unplugged): reopen it */
	LOY_HAL_E_BAD_SCAN = -6,    /**< a scan was read but is unusable; it is dropped */
	LOY_HAL_E_UNSUPPORTED = -7  /**< the device cannot do that */
} loy_hal_error;

/** \brief The stable name of a HAL return value: "ok", "io", "gone", ... Never NULL. */
LOY_API const char *loy_hal_strerror(int code);

/* ------------------------------------------------------------------------- */

#define LOY_HAL_CLOCK_VERSION 1
/** What a clock returns when it cannot be read at all. */
#define LOY_HAL_TIME_INVALID INT64_MIN

/**
 * \brief Time. Both functions may be called from any thread.
 */
typedef struct loy_hal_clock {
	int version; /**< LOY_HAL_CLOCK_VERSION */
	void *ctx; /**< passed first to every function of the table */
	/**
	 * \brief Wall time: milliseconds since 1970-01-01T00:00:00Z. Stamps
	 * entries and receipts. It may jump forward or back (NTP, a cashier
	 * setting the date), so it never measures durations.
	 * \return the time, or LOY_HAL_TIME_INVALID.
	 */
	int64_t (*wall_ms)(void *ctx);
	/**
	 * \brief Monotonic time: milliseconds from an unspecified origin, never
	 * decreasing while the table lives. Measures time-outs and intervals.
	 * \return the time, or LOY_HAL_TIME_INVALID.
	 */
	int64_t (*monotonic_ms)(void *ctx);
} loy_hal_clock;

/* ------------------------------------------------------------------------- */

#define LOY_HAL_CARD_READER_VERSION 1
/**
 * Most bytes of a scan with its terminating NUL. A PAN has at most 19 digits;
 * track 2 with its sentinels, separator and discretionary data at most 40
 * characters; the rest is room for a QR payload with spaces or dashes.
 */
#define LOY_HAL_SCAN_MAX 128

/**
 * \brief A card reader: magnetic stripe, barcode or QR scanner, keypad.
 * A scan is delivered as the text the CLI contract calls SCAN: plain digits
 * ("6280 0012 3456 7895"), track 2 (";6280001234567895=2812?") or a QR payload
 * ("LOYALTY:6280001234567895"), without a line terminator. The reader does
 * not check card numbers; the library does.
 */
typedef struct loy_hal_card_reader {
	int version; /**< LOY_HAL_CARD_READER_VERSION */
	void *ctx; /**< passed first to every function of the table */
	/**
	 * \brief Waits for the next scan.
	 * \param buf receives the scan, NUL-terminated.
	 * \param size bytes at buf; LOY_HAL_SCAN_MAX are always enough.
	 * \param timeout_ms the longest wait: 0 only looks, a negative value
	 * waits until a scan or a failure.
	 * \return 1 with a scan in buf; 0 when the time ran out; LOY_HAL_E_BAD_SCAN
	 * for a scan too long for buf (or for the reader) or garbled, which is
	 * dropped; LOY_HAL_E_GONE when the reader went away; LOY_HAL_E_IO.
	 */
	int (*read_scan)(void *ctx, char *buf, size_t size, int timeout_ms);
} loy_hal_card_reader;

/* ------------------------------------------------------------------------- */

#define LOY_HAL_LINK_VERSION 1

/**
 * \brief The network link: whether the central server could be reachable at
 * all, so that a sync is tried when the link comes back rather than on a
 * timer alone. "Up" is the link layer's view; the server may still be
 * unreachable.
 */
typedef struct loy_hal_link {
	int version; /**< LOY_HAL_LINK_VERSION */
	void *ctx; /**< passed first to every function of the table */
	/**
	 * \brief The link's state now. May be called while another thread waits
	 * in wait_change().
	 * \return 1 up, 0 down, LOY_HAL_E_IO.
	 */
	int (*is_up)(void *ctx);
	/**
	 * \brief Waits until the state has changed since is_up() last answered,
	 * at once when it already has. A change that was undone before the call
	 * returns (a flap) still counts. A spurious 1 is allowed: the caller asks
	 * is_up() again.
	 * \param timeout_ms the longest wait; negative: no limit.
	 * \return 1 on a change, 0 when the time ran out, LOY_HAL_E_IO.
	 */
	int (*wait_change)(void *ctx, int timeout_ms);
} loy_hal_link;

/* ------------------------------------------------------------------------- */

#define LOY_HAL_KEYSTORE_VERSION 1
/** Most bytes of an item's name with its NUL. */
#define LOY_HAL_KEY_NAME_MAX 64
/** Bytes of a secret key: an item whose name ends in ".key". */
#define LOY_HAL_KEY_BYTES 32
/** Most bytes of any item: a PEM certificate chain fits. */
#define LOY_HAL_ITEM_MAX (64 * 1024)

/**
 * \brief Secrets and certificates: "ledger.key" (the ledger's MAC key),
 * "token.key" (the chain's card-token key), "tls/ca.pem", "tls/cert.pem",
 * "tls/key.pem" (the TLS identity).
 *
 * A name is one to four components joined by '/', each of letters, digits,
 * '.', '-' and '_', none starting with '.'; no absolute path, no "..". A name
 * ending in ".key" holds exactly LOY_HAL_KEY_BYTES raw bytes; any other name
 * holds up to LOY_HAL_ITEM_MAX bytes. A put replaces an item atomically: a
 * crash or a failure leaves the old value or the new one, never a mix.
 */
typedef struct loy_hal_keystore {
	int version; /**< LOY_HAL_KEYSTORE_VERSION */
	void *ctx; /**< passed first to every function of the table */
	/**
	 * \brief Reads an item.
	 * \param buf receives the bytes; may be NULL when size is 0.
	 * \param len receives the item's size, also on LOY_HAL_E_TOO_BIG.
	 * \return 0; LOY_HAL_E_NOT_FOUND; LOY_HAL_E_TOO_BIG when size is too
	 * small (ask with size 0 for the size); LOY_HAL_E_ARGUMENT for a bad
	 * name; LOY_HAL_E_IO, also for an item that is not what its name says.
	 */
	int (*get)(void *ctx, const char *name, unsigned char *buf, size_t size, size_t *len);
	/**
	 * \brief Creates or atomically replaces an item.
	 * \return 0; LOY_HAL_E_ARGUMENT for a bad name or size; LOY_HAL_E_IO,
	 * and then the item holds its old value or, when only the last step
	 * (making the replacement durable) failed, the new one.
	 */
	int (*put)(void *ctx, const char *name, const unsigned char *data, size_t len);
	/**
	 * \brief Removes an item.
	 * \return 0; LOY_HAL_E_NOT_FOUND; LOY_HAL_E_ARGUMENT; LOY_HAL_E_IO.
	 */
	int (*erase)(void *ctx, const char *name);
} loy_hal_keystore;

/* ------------------------------------------------------------------------- */

#define LOY_HAL_PRINTER_VERSION 1
/** Most bytes of a printed line with its NUL; receipt paper has 32 to 56 columns. */
#define LOY_HAL_LINE_MAX 256

/**
 * \brief A receipt printer or a customer display: lines of text.
 */
typedef struct loy_hal_printer {
	int version; /**< LOY_HAL_PRINTER_VERSION */
	void *ctx; /**< passed first to every function of the table */
	/**
	 * \brief Prints a line. The device may hold it until flush().
	 * \param line UTF-8 text without a line terminator: no '\\n' or '\\r'.
	 * \return 0; LOY_HAL_E_ARGUMENT for a line with a terminator or of
	 * LOY_HAL_LINE_MAX bytes or more; LOY_HAL_E_IO (out of paper, ...).
	 */
	int (*print_line)(void *ctx, const char *line);
	/**
	 * \brief The receipt is complete: pushes the lines out.
	 * \return 0 or LOY_HAL_E_IO.
	 */
	int (*flush)(void *ctx);
} loy_hal_printer;

/* ------------------------------------------------------------------------- */

#define LOY_HAL_VERSION 1

/**
 * \brief The devices of one terminal, given to the library when it opens a
 * handle. The tables must outlive the handle; the library never frees them.
 * A NULL device is absent: the library does without it (no printer: no
 * receipt; no link: syncs are tried on demand only) or refuses what needs it.
 */
typedef struct loy_hal {
	int version; /**< LOY_HAL_VERSION */
	const loy_hal_clock *clock;
	const loy_hal_card_reader *reader;
	const loy_hal_link *link;
	const loy_hal_keystore *keys;
	const loy_hal_printer *printer;
} loy_hal;

/**
 * \brief Checks the tables: known versions, no NULL function where the
 * version says there is one. Absent (NULL) devices pass.
 * \param why receives a message naming the bad slot ("link: wait_change is
 * NULL"); may be NULL.
 * \param size bytes at why.
 * \return 0 or LOY_HAL_E_ARGUMENT.
 */
LOY_API int loy_hal_check(const loy_hal *hal, char *why, size_t size);

/**
 * \brief The wall time of `clock` (milliseconds since the epoch), or the
 * system's when `clock` is NULL or answers LOY_HAL_TIME_INVALID: a receipt
 * is stamped with the system's time rather than with nothing. The library
 * and the reference till take their time through these two.
 */
LOY_API int64_t loy_hal_wall_ms(const loy_hal_clock *clock);

/** \brief The monotonic time of `clock`, or the system's CLOCK_MONOTONIC, as loy_hal_wall_ms(). */
LOY_API int64_t loy_hal_monotonic_ms(const loy_hal_clock *clock);

/* ---------------------------------------------------------------------------
 * Linux implementations. Each open function fills a table (its ctx owned by
 * the table) and returns 0 or a loy_hal_error; its close function releases
 * the ctx and zeroes the table, and ignores a table that is zero already.
 * Close a table only when no thread uses it.
 */

/** \brief The system clocks: CLOCK_REALTIME and CLOCK_MONOTONIC. \return 0. */
LOY_API int loy_hal_linux_clock_open(loy_hal_clock *out);
/** \brief Releases a clock from loy_hal_linux_clock_open(). */
LOY_API void loy_hal_linux_clock_close(loy_hal_clock *clock);

/**
 * \brief A keyboard-wedge scanner through evdev: the scanner types the scan
 * and Enter. Digits, ';', '=', '?', ':', '-', space and letters are decoded
 * with either Shift; a key outside those makes the scan LOY_HAL_E_BAD_SCAN.
 * \param path "/dev/input/eventN" (or a /dev/input/by-id/ link): the
 * process needs read access, usually the "input" group.
 * \param grab nonzero takes the device for this process alone (EVIOCGRAB),
 * so that scans do not also reach a console or a desktop.
 * \return 0, LOY_HAL_E_ARGUMENT, LOY_HAL_E_IO (no such device, no access).
 */
LOY_API int loy_hal_linux_evdev_open(loy_hal_card_reader *out, const char *path, int grab);
/** \brief Releases the device; ungrabs it. */
LOY_API void loy_hal_linux_evdev_close(loy_hal_card_reader *reader);

/**
 * \brief A reader on a serial line (RS-232, USB CDC-ACM): a scan is a line of
 * printable ASCII ended by CR, LF or CR LF; empty lines are skipped. The line
 * is put in raw mode, 8N1, without flow control.
 * \param path "/dev/ttyS0", "/dev/ttyACM0", ...
 * \param baud 1200 to 230400; 0 keeps the line's speed.
 * \return 0; LOY_HAL_E_ARGUMENT for an unknown speed; LOY_HAL_E_IO.
 */
LOY_API int loy_hal_linux_serial_open(loy_hal_card_reader *out, const char *path, int baud);
/** \brief Restores the line's settings and closes it. */
LOY_API void loy_hal_linux_serial_close(loy_hal_card_reader *reader);

/**
 * \brief The link from the kernel: an rtnetlink socket (RTMGRP_LINK) for the
 * initial state (an RTM_GETLINK dump) and the changes. An interface is up
 * when it is administratively up and its operational state is "up" (or
 * "unknown" with a carrier, as tun and dummy interfaces report). Where
 * rtnetlink is not allowed, /sys/class/net is read instead and a change is
 * noticed within a second.
 * \param ifname the interface that counts ("eth0", "wlan0"), or NULL for any
 * interface but loopback.
 * \return 0, LOY_HAL_E_ARGUMENT, LOY_HAL_E_IO.
 */
LOY_API int loy_hal_linux_link_open(loy_hal_link *out, const char *ifname);
/** \brief Closes the socket. */
LOY_API void loy_hal_linux_link_close(loy_hal_link *link);

/**
 * \brief A key store over a directory, one file per item (a name with '/'
 * is a subdirectory, made with mode 0700). Files have mode 0600 and are
 * replaced atomically: written to a temporary file, synced, renamed over the
 * old one, and the directory synced. A ".key" item is kept as the key files
 * of the data dir are: 64 hex digits and a newline; others byte for byte.
 * So a terminal's data dir, opened as a key store, holds "ledger.key",
 * "token.key" and "tls/ca.pem", "tls/cert.pem", "tls/key.pem".
 * \param dir an existing directory.
 * \return 0, LOY_HAL_E_ARGUMENT, LOY_HAL_E_IO (not a directory).
 */
LOY_API int loy_hal_linux_keystore_open(loy_hal_keystore *out, const char *dir);
/** \brief Releases a key store. */
LOY_API void loy_hal_linux_keystore_close(loy_hal_keystore *keys);

/** With it, flush() also fsyncs a regular file (see loy_hal_linux_printer_open()). */
#define LOY_HAL_PRINTER_FSYNC 1u

/**
 * \brief A printer on a file or a tty: each line is appended with a '\\n' in
 * one write(2), so it reaches the file or the line at once. flush() waits
 * until a tty has sent it all (tcdrain); on a regular file it calls fsync
 * only with LOY_HAL_PRINTER_FSYNC, since a journal of receipts on flash
 * need not cost a sync per receipt.
 * \param path a file (created with mode 0640 if missing) or a tty.
 * \param flags 0 or LOY_HAL_PRINTER_FSYNC.
 * \return 0, LOY_HAL_E_ARGUMENT, LOY_HAL_E_IO.
 */
LOY_API int loy_hal_linux_printer_open(loy_hal_printer *out, const char *path, unsigned flags);
/** \brief Closes the file. */
LOY_API void loy_hal_linux_printer_close(loy_hal_printer *printer);

#ifdef __cplusplus
}
#endif

#endif /* LOYALTY_HAL_H */
