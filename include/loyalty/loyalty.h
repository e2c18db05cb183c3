/*
 * loyalty.h - the public C API of the loyalty module.
 *
 * A POS application links libloyalty.a and includes this header only. Nothing
 * C++ crosses it and no exception leaves it: every call returns a loy_status,
 * and a handle keeps the message of its last failure (loy_engine_errmsg()).
 *
 * Money is an int64_t count of the currency's minor unit, points are int64_t;
 * nothing here is floating point.
 */
#ifndef LOYALTY_LOYALTY_H
#define LOYALTY_LOYALTY_H

#include "export.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LOY_VERSION_MAJOR 0
#define LOY_VERSION_MINOR 2
#define LOY_VERSION_PATCH 0
/** 0xXXYYZZ: major, minor, patch; compare with >= for features. */
#define LOY_VERSION_NUM 0x000200
#define LOY_VERSION_STR "0.2.0"

/**
 * \brief Status codes. Append only: a value is never renumbered or removed,
 * new ones are added last.
 */
typedef enum loy_status {
	LOY_OK = 0,
	LOY_E_INTERNAL = 1,          /**< a bug or an unexpected failure */
	LOY_E_BAD_ARGUMENT = 2,      /**< null pointer, empty string, bad value */
	LOY_E_BAD_JSON = 3,          /**< text that is not JSON */
	LOY_E_BAD_PROGRAM = 4,       /**< program document invalid: message names the field */
	LOY_E_BAD_BASKET = 5,        /**< basket invalid: message names the line and field */
	LOY_E_BAD_CARD = 6,          /**< scan holds no valid card number */
	LOY_E_OVERFLOW = 7,          /**< amounts too large to compute exactly */
	LOY_E_UNKNOWN_REWARD = 8,    /**< the program has no such reward */
	LOY_E_UNKNOWN_RECEIPT = 9,   /**< no receipt with that id */
	LOY_E_RECEIPT_CONFLICT = 10, /**< receipt id reused with another basket */
	LOY_E_BAD_REFUND = 11,       /**< more units than sold, sku not on the receipt */
	LOY_E_NO_PROGRAM = 12,       /**< no program loaded yet */
	LOY_D_BLOCKED = 13,          /**< declined: the card is blocked */
	LOY_D_BALANCE_UNKNOWN = 14,  /**< declined: balance not known here */
	LOY_D_MIN_POINTS = 15,       /**< declined: below redeem.min_points */
	LOY_D_MAX_PCT = 16,          /**< declined: over redeem.max_pct of the spend */
	LOY_D_REWARD_NOT_IN_BASKET = 17, /**< declined: reward's sku not in the basket */
	LOY_D_INSUFFICIENT_POINTS = 18,  /**< declined: not enough points */
	LOY_D_DAILY_CAP = 19,        /**< declined: over redeem.offline_daily_cap */
	LOY_D_ALREADY_REFUNDED = 20, /**< declined: those units were refunded already */
	LOY_E_STORAGE = 21,          /**< ledger unreadable, unwritable or tampered */
	LOY_E_NETWORK = 22,          /**< central server unreachable: try again later */
	LOY_E_OLD_PROGRAM = 23,      /**< program version not newer than the one in force */
	LOY_E_UNKNOWN_CHARITY = 24,  /**< the program has no such charity (since 0.2) */
	LOY_E_UNKNOWN_STAMP_CARD = 25, /**< the program has no such stamp card (since 0.2) */
	LOY_D_INSUFFICIENT_STAMPS = 26, /**< declined: fewer stamps than the card's reward needs (since 0.2) */
	LOY_D_STAMP_DAILY_LIMIT = 27 /**< declined: a stamp reward already taken here today (since 0.2) */
} loy_status;

/** \brief What a status means for the caller; also the CLI's exit code. */
typedef enum loy_kind {
	LOY_KIND_OK = 0,
	LOY_KIND_OTHER = 1,
	LOY_KIND_BAD_INPUT = 2,
	LOY_KIND_DECLINED = 3,
	LOY_KIND_STORAGE = 4,
	LOY_KIND_NETWORK = 5
} loy_kind;

/** \brief The library's version, "0.2.0". */
LOY_API const char *loy_version(void);
/** \brief The library's LOY_VERSION_NUM, to compare with the header's. */
LOY_API unsigned loy_version_num(void);
/** \brief The stable name of a status: "insufficient_points", "bad_basket", ... */
LOY_API const char *loy_errstr(loy_status status);
/** \brief The kind of a status. */
LOY_API loy_kind loy_status_kind(loy_status status);

/** Most bytes of a masked card, "****7897", with its terminating NUL. */
#define LOY_MASKED_CARD_MAX 16
/** Most bytes of a tier name with its terminating NUL. */
#define LOY_NAME_MAX 65
/** Most bytes of a handle's last error message with its NUL; longer ones are cut. */
#define LOY_ERRMSG_MAX 512

/**
 * \brief The rules engine: a program and the operations on it. Pure: no
 * files, no clock, no network. Not thread-safe; use one per thread or lock.
 */
typedef struct loy_engine loy_engine;

/** \brief A new engine with no program. \return LOY_OK, or LOY_E_INTERNAL without memory. */
LOY_API loy_status loy_engine_new(loy_engine **out);
/** \brief Frees an engine; NULL is ignored. */
LOY_API void loy_engine_free(loy_engine *engine);
/**
 * \brief The message of the engine's last failure, "" after a success: every
 * call on the engine that returns a loy_status sets or clears it. Never NULL.
 */
LOY_API const char *loy_engine_errmsg(const loy_engine *engine);

/**
 * \brief Installs a program document (JSON text of spec/program.md).
 * \param json the document; need not be NUL-terminated.
 * \param len its length in bytes.
 * \return LOY_OK; LOY_E_BAD_PROGRAM / LOY_E_BAD_JSON naming the field, or
 * LOY_E_OLD_PROGRAM for an older version of the same program. On failure the
 * program in force stays in force.
 */
LOY_API loy_status loy_engine_program_load(loy_engine *engine, const char *json, size_t len);

/** \brief The program in force: its id (valid until the next load) and version. */
LOY_API loy_status loy_engine_program_info(const loy_engine *engine, const char **id, int64_t *version);

/** Most bytes of a formatted amount, "EUR -92233720368547758.08", with its NUL. */
#define LOY_MONEY_MAX 32

/**
 * \brief Formats an amount of minor units in the program's currency for a
 * receipt or a display: "EUR 13.50", "JPY 1350", "BHD 1.350".
 * \param buf receives the text (LOY_MONEY_MAX bytes are always enough).
 * \return LOY_OK, LOY_E_NO_PROGRAM, or LOY_E_BAD_ARGUMENT when buf is too small.
 */
LOY_API loy_status loy_engine_format_money(const loy_engine *engine, int64_t amount, char *buf,
				   size_t size);

/**
 * \brief Formats an amount of minor units of an ISO 4217 currency, without a
 * program: "EUR 13.50". Same output as loy_engine_format_money().
 */
LOY_API loy_status loy_format_money(const char *currency, int64_t amount, char *buf, size_t size);

/**
 * \brief Checks a card scan (digits, track 2 or LOYALTY: QR) against the
 * program's card rule.
 * \param masked receives "****7897", at most LOY_MASKED_CARD_MAX bytes with
 * its NUL; may be NULL. \param size the bytes masked holds.
 * \return LOY_OK, LOY_E_BAD_CARD, or LOY_E_BAD_ARGUMENT when masked is too
 * small (the message says how many bytes it needs).
 */
LOY_API loy_status loy_engine_card_check(loy_engine *engine, const char *scan, char *masked, size_t size);

/*
 * Structs that may grow carry their size first: the caller sets it,
 * LOY_INIT(type) zeroes the rest, and a newer library honours an older
 * caller's smaller struct (the fields it lacks read as zero; an output
 * struct gets only what it has room for). Fields are only ever appended.
 */
#ifdef __cplusplus
#define LOY_INIT(type) (loy_init_<type>())
#else
#define LOY_INIT(type) {.size = sizeof(type)}
#endif

/** \brief What the caller knows of a member before a checkout: LOY_INIT(loy_member). */
typedef struct loy_member {
	size_t size;              /**< sizeof(loy_member) */
	int known;                /**< balance known: came in a sync or enrolled here */
	int blocked;              /**< blocked by the central server */
	int64_t balance;          /**< available points now */
	int64_t qualifying_spend; /**< decides the tier */
	int64_t redeemed_today;   /**< by this member on this terminal this local day */
} loy_member;

typedef enum loy_redeem_kind {
	LOY_REDEEM_NONE = 0,
	LOY_REDEEM_POINTS = 1,
	LOY_REDEEM_REWARD = 2,
	LOY_REDEEM_STAMP_CARD = 3 /**< the stamp card's reward (program spec 2; since 0.2) */
} loy_redeem_kind;

/** \brief A redemption on a checkout: LOY_INIT(loy_redemption) for none. */
typedef struct loy_redemption {
	size_t size;        /**< sizeof(loy_redemption) */
	loy_redeem_kind kind;
	int64_t points;     /**< LOY_REDEEM_POINTS */
	const char *reward; /**< LOY_REDEEM_REWARD: the reward's id; LOY_REDEEM_STAMP_CARD: the stamp card's */
} loy_redemption;

/** \brief The figures of a checkout (LOY_INIT(loy_checkout)); the breakdown is in the result JSON. */
typedef struct loy_checkout {
	size_t size;            /**< sizeof(loy_checkout) */
	int64_t earned;
	int64_t redeemed;       /**< points taken */
	int64_t discount;       /**< money taken off by the redemption */
	int64_t eligible_spend; /**< what earned points */
	char tier[LOY_NAME_MAX];
} loy_checkout;

/**
 * \brief Computes a checkout: accrual with its breakdown, and the redemption
 * checks. Records nothing.
 * \param basket_json a basket document (spec/program.md).
 * \param member the member's state; NULL for an unknown card.
 * \param redemption NULL or kind LOY_REDEEM_NONE for none.
 * \param out receives the figures; may be NULL.
 * \return LOY_OK; a LOY_D_* code when a rule declines the redemption; a
 * LOY_E_* code for bad input. loy_engine_result_json() then holds the
 * receipt: what loy_engine_refund() takes.
 */
LOY_API loy_status loy_engine_checkout(loy_engine *engine, const char *basket_json, size_t len,
			       const loy_member *member, const loy_redemption *redemption,
			       loy_checkout *out);

/** \brief Units of one sku returned by a refund. */
typedef struct loy_return_line {
	const char *sku;
	int64_t qty;
} loy_return_line;

/**
 * \brief Computes a refund of a receipt made by loy_engine_checkout() under
 * the program in force.
 * \param receipt_json the "receipt" object of a checkout's or an earlier
 * refund's result JSON (it carries what was already returned).
 * \param lines the units returned; n = 0 returns every unit not yet returned.
 * \param reversed receives the earned points taken back; may be NULL.
 * \param returned receives the redeemed points given back; may be NULL.
 * \return LOY_OK, LOY_D_ALREADY_REFUNDED, LOY_E_BAD_REFUND, LOY_E_BAD_JSON.
 * loy_engine_result_json() then holds the figures and the updated receipt.
 */
LOY_API loy_status loy_engine_refund(loy_engine *engine, const char *receipt_json, size_t len,
			     const loy_return_line *lines, size_t n, int64_t *reversed,
			     int64_t *returned);

/** \brief Parts in the breakdown of the last successful checkout, 0 before any. */
LOY_API size_t loy_engine_breakdown_count(const loy_engine *engine);

/**
 * \brief One part of the last checkout's breakdown, in order: "base" first,
 * then "tier:<name>", then campaign ids.
 * \param rule receives the part's name, valid until the next call on the engine.
 * \return LOY_OK, or LOY_E_BAD_ARGUMENT past the last part.
 */
LOY_API loy_status loy_engine_breakdown_part(const loy_engine *engine, size_t index, const char **rule,
				     int64_t *points);

/**
 * \brief The JSON text of the last successful checkout or refund (valid until
 * the next call on the engine), "" before any.
 */
LOY_API const char *loy_engine_result_json(const loy_engine *engine);


/* ---------------------------------------------------------------------------
 * The terminal: the engine over the terminal's ledger in a data dir. Every
 * operation is one transaction: recorded whole, or not at all. Results are
 * JSON objects (the `--json` output of loyalty-terminal), read with
 * loy_terminal_result_json().
 */

/** The devices of a terminal: include "loyalty/hal.h" to fill one. */
struct loy_hal;

/** \brief A terminal handle. One per thread; several processes may share a data dir. */
typedef struct loy_terminal loy_terminal;

/** \brief Settings of a new terminal: LOY_INIT(loy_terminal_setup); unused strings NULL. */
typedef struct loy_terminal_setup {
	size_t size;             /**< sizeof(loy_terminal_setup) */
	const char *terminal_id; /**< required: letters, digits, '-', '_', '.' */
	const char *store;       /**< required, same alphabet */
	const char *tz;          /**< IANA zone or "+01:00"; NULL: receipts' own offsets */
	const char *server;      /**< https://HOST:PORT of the central server, or NULL */
	const char *ca;          /**< with server: the server's CA (PEM path) */
	const char *cert;        /**< with server: this terminal's certificate (PEM path) */
	const char *key;         /**< with server: its private key (PEM path) */
	const char *token_key;   /**< the chain's card-token key file; NULL: made here */
} loy_terminal_setup;

/** \brief A handle with no data dir yet, as loy_engine_new(): LOY_E_INTERNAL only without memory. */
LOY_API loy_status loy_terminal_new(loy_terminal **out);
/** \brief Closes and frees; NULL is ignored. */
LOY_API void loy_terminal_free(loy_terminal *t);
/**
 * \brief The message of the handle's last failure, "" after a success: every
 * call on the handle sets or clears it, but for loy_terminal_cancel_sync()
 * and loy_terminal_utc_offset() (callable from another thread) and these
 * two readers. Never NULL.
 */
LOY_API const char *loy_terminal_errmsg(const loy_terminal *t);
/**
 * \brief The JSON object of the last successful operation (program load,
 * enroll, checkout, refund, balance, status, sync, verify), "" before any. A
 * failed operation leaves it as it was: read it only after LOY_OK.
 */
LOY_API const char *loy_terminal_result_json(const loy_terminal *t);

/**
 * \brief Sets the clock used to stamp entries (seconds since the epoch, UTC);
 * NULL restores the system clock. For a HAL clock or a test.
 */
LOY_API void loy_terminal_set_clock(loy_terminal *t, int64_t (*now)(void *ctx), void *ctx);

/** \brief Makes data_dir a terminal's (keys, settings, empty ledger) and opens it. */
LOY_API loy_status loy_terminal_init(loy_terminal *t, const char *data_dir, const loy_terminal_setup *setup);
/** \brief Opens an initialised data dir. */
LOY_API loy_status loy_terminal_open(loy_terminal *t, const char *data_dir);

/**
 * \brief loy_terminal_init() on a terminal's devices (loyalty/hal.h): the
 * keys and certificates go to hal->keys, time comes from hal->clock.
 * hal (and its tables) must outlive the handle; NULL, or a NULL device, is
 * the default: key files in the data dir, the system clock. A table that
 * fails loy_hal_check() is LOY_E_BAD_ARGUMENT.
 */
LOY_API loy_status loy_terminal_init_hal(loy_terminal *t, const char *data_dir,
				 const loy_terminal_setup *setup, const struct loy_hal *hal);
/** \brief loy_terminal_open() on a terminal's devices; see loy_terminal_init_hal(). */
LOY_API loy_status loy_terminal_open_hal(loy_terminal *t, const char *data_dir, const struct loy_hal *hal);

/** \brief Installs a program version; older versions are refused (LOY_E_OLD_PROGRAM). */
LOY_API loy_status loy_terminal_program_load(loy_terminal *t, const char *json, size_t len);
/** \brief Enrols a card on this terminal: its balance becomes known here. */
LOY_API loy_status loy_terminal_enroll(loy_terminal *t, const char *scan);
/**
 * \brief loy_terminal_enroll() of a card brought by the member of
 * `referrer_scan` (program spec 2, "Referral"). The centre decides whether
 * the referral counts; a card known here already is not enrolled again (its
 * result says "enrolled": false), but the referral is recorded for the
 * centre to refuse with its reason. A referrer's scan that is no card is
 * LOY_E_BAD_CARD. Since 0.2.
 */
LOY_API loy_status loy_terminal_enroll_referred(loy_terminal *t, const char *scan, const char *referrer_scan);
/**
 * \brief Records a checkout: points earned, and the redemption if any.
 * A receipt id seen before returns the recorded result ("replayed": true)
 * for the same request, LOY_E_RECEIPT_CONFLICT for another.
 */
LOY_API loy_status loy_terminal_checkout(loy_terminal *t, const char *scan, const char *basket_json,
				 size_t len, const loy_redemption *redemption);
/**
 * \brief Gives `points` of the member's to charity `charity` of the program
 * (program spec 2): declined as a redemption for money is (balance unknown,
 * not enough points, blocked card, offline daily cap); a charity the program
 * does not have is LOY_E_UNKNOWN_CHARITY. Result: card, charity, points,
 * balance. Since 0.2.
 */
LOY_API loy_status loy_terminal_donate(loy_terminal *t, const char *scan, const char *charity, int64_t points);
/** \brief Records a refund of units of a receipt of this terminal (n = 0: all left). */
LOY_API loy_status loy_terminal_refund(loy_terminal *t, const char *receipt_id,
			       const loy_return_line *lines, size_t n);
/**
 * \brief loy_terminal_refund() under the POS's own id for the refund (its
 * return slip): sent again with the same id and lines, the recorded refund
 * is answered ("replayed": true) and nothing moves twice; with other lines
 * it is LOY_E_RECEIPT_CONFLICT. refund_id: 1 to 64 letters, digits, '-',
 * '_', '.'; NULL is loy_terminal_refund().
 */
LOY_API loy_status loy_terminal_refund_keyed(loy_terminal *t, const char *receipt_id, const char *refund_id,
				     const loy_return_line *lines, size_t n);
/** \brief A member's balance, pending points, tier and what is redeemable today. */
LOY_API loy_status loy_terminal_balance(loy_terminal *t, const char *scan);
/** \brief Terminal id, store, program, entries, unsynced entries, last sync. */
LOY_API loy_status loy_terminal_status(loy_terminal *t);
/**
 * \brief Syncs with the central server over mutual TLS: pushes every entry
 * not yet acknowledged, pulls the program and the members changed since the
 * last sync, and records it all in one transaction. On LOY_E_NETWORK nothing
 * is lost: the next sync sends it again, and the server counts it once.
 * \param progress called with a short line after each step; may be NULL.
 */
LOY_API loy_status loy_terminal_sync(loy_terminal *t, void (*progress)(const char *line, void *ctx),
			     void *ctx);

/**
 * \brief After the last loy_terminal_sync() on this handle failed: how long
 * the centre asked the terminal to wait before trying again (a busy
 * server's 503 Retry-After), in milliseconds, at most a day; 0 when it
 * asked nothing (or the sync succeeded). Feed it to loy_schedule_busy().
 */
LOY_API int64_t loy_terminal_retry_after_ms(const loy_terminal *t);

/**
 * \brief Stops a sync in progress on this handle, from another thread: its
 * waits end within 200 ms and loy_terminal_sync() returns LOY_E_NETWORK
 * ("cancelled"), recording nothing (the next sync sends it all again).
 * While set, every sync on the handle fails so; 0 clears it. The one
 * function that may be called while another thread uses the handle.
 */
LOY_API void loy_terminal_cancel_sync(loy_terminal *t, int cancel);

/**
 * \brief Time-outs of a sync's connect and of each read or write, in
 * milliseconds (defaults 5000 and 60000); 0 keeps the default.
 */
LOY_API void loy_terminal_set_sync_timeouts(loy_terminal *t, int connect_ms, int io_ms);

/**
 * \brief Checks the ledger: SQLite integrity, hash chain, MACs, sequence,
 * derived tables. \param ok receives 1 when all hold. A ledger that fails is
 * LOY_OK with *ok == 0 and "first_bad" in the result; LOY_E_STORAGE means it
 * could not be read at all.
 */
LOY_API loy_status loy_terminal_verify(loy_terminal *t, int *ok);

/**
 * \brief The UTC offset of the terminal's local time at an instant: its
 * zone's (the tz given at init, IANA name or "+01:00"), or for a terminal
 * given none the system's, read from /etc/localtime (UTC when it cannot be
 * read). Neither TZ, tzset() nor localtime() is used. Like
 * loy_terminal_cancel_sync(), it may be called from any thread while
 * another uses the handle (not while it is opened or freed), and it leaves
 * loy_terminal_errmsg() as it is.
 * \param utc_s the instant, seconds since the epoch (UTC).
 * \param offset_s receives the offset in seconds east of UTC (+3600 for
 * Europe/Budapest in winter).
 * \return LOY_OK; LOY_E_BAD_ARGUMENT for a NULL offset_s or a handle not
 * open; LOY_E_STORAGE when the zone's file can no longer be read.
 */
LOY_API loy_status loy_terminal_utc_offset(loy_terminal *t, int64_t utc_s, int32_t *offset_s);

#ifdef __cplusplus
}
#endif

#ifdef __cplusplus
/* LOY_INIT in C++: the struct value-initialised, its size set. */
template <class T> inline T loy_init_()
{
	T value{};
	value.size = sizeof(T);
	return value;
}
#endif

#endif /* LOYALTY_LOYALTY_H */
