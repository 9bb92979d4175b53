/* SPDX-License-Identifier: Apache-2.0 WITH Linux-syscall-note */
/*
 * UALink confidential-computing driver UAPI.
 *
 * GENERATED from ualink-kdrv/src/uapi.rs by render_c_header(); do not edit.
 * Regenerate: UALINK_REGEN_UAPI=1 cargo test -p ualink-kdrv uapi_header_is_current
 *
 * Every struct starts with size (= sizeof) and flags (no unknown bit); _rsvd fields
 * must be zero; out fields are ignored on input. All fields are little-endian.
 * Errors: see the errno list at the end of this file.
 */
#ifndef _UAPI_LINUX_UALINK_H
#define _UAPI_LINUX_UALINK_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define UALINK_IOC_MAGIC 0xC5

#define UALINK_ATTACH_F_DYNAMIC 1U /* importer handles invalidation (mandatory) */
#define UALINK_TDI_F_QUARANTINE 1U /* quarantine the accelerator */
#define UALINK_RAS_F_AUDIT_ROUTES 1U /* also audit every routing entry */
#define UALINK_RIGHT_READ 1U /* loads */
#define UALINK_RIGHT_WRITE 2U /* stores */
#define UALINK_RIGHT_ATOMIC 4U /* atomics */
#define UALINK_TDI_STATE_UNLOCKED 0U /* TDISP CONFIG_UNLOCKED */
#define UALINK_TDI_STATE_LOCKED 1U /* TDISP CONFIG_LOCKED */
#define UALINK_TDI_STATE_RUN 2U /* TDISP RUN */
#define UALINK_TDI_STATE_ERROR 3U /* TDISP ERROR */
#define UALINK_DIR_TX 0U /* key slot: transmit */
#define UALINK_DIR_RX 1U /* key slot: receive */
#define UALINK_KEYSLOT_CMD_QUERY 0U /* read metadata */
#define UALINK_KEYSLOT_CMD_GO 1U /* enable the direction */
#define UALINK_KEYSLOT_CMD_STOP 2U /* disable the direction */
#define UALINK_KEYSLOT_CMD_ROLL 3U /* swap alternate into active */
#define UALINK_KEYSLOT_CMD_INVALIDATE 4U /* zeroize both slots */
#define UALINK_SLOT_EMPTY 0U /* no key */
#define UALINK_SLOT_PROGRAMMED 1U /* programmed, not in use */
#define UALINK_SLOT_LIVE 2U /* in use */
#define UALINK_SLOT_STALE 3U /* stale: traffic stopped */
#define UALINK_SPDM_MAX 4096U /* largest relayed SPDM message */
#define UALINK_GRANT_MAX 1024U /* largest grant or rotation message */

/* UALINK_IOC_EXPORT (tenant): export a region of one of the caller's windows; returns its handle. */
struct ualink_export {
	__u32 size; /* in: sizeof(struct ualink_export) */
	__u32 flags; /* in: no flags defined, must be 0 */
	__u32 window; /* in: window id */
	__u32 _rsvd0; /* reserved, must be 0 */
	__u64 offset; /* in: byte offset into the window */
	__u64 len; /* in: length in bytes (non-zero) */
	__u8 handle[16]; /* out: the 128-bit opaque buffer handle */
};
_Static_assert(sizeof(struct ualink_export) == 48, "struct ualink_export size");

/* UALINK_IOC_ATTACH (tenant): attach as a dynamic importer; followed by grant_len bytes of grant. */
struct ualink_attach {
	__u32 size; /* in: sizeof(struct ualink_attach) */
	__u32 flags; /* in: UALINK_ATTACH_F_DYNAMIC (mandatory) */
	__u8 handle[16]; /* in: buffer handle */
	__u32 importer_accel; /* in: importing accelerator id (10 bits) */
	__u32 rights; /* in: UALINK_RIGHT_* bits (non-zero) */
	__u64 cookie; /* in: cookie passed back on invalidation (move_notify) */
	__u32 grant_len; /* in: bytes of COSE_Sign1 grant after this struct (0 = none) */
	__u32 _rsvd0; /* reserved, must be 0 */
	__u64 attachment; /* out: attachment id */
};
_Static_assert(sizeof(struct ualink_attach) == 56, "struct ualink_attach size");

/* UALINK_IOC_MAP (tenant): map an attachment (cached gate check, route, window permission). */
struct ualink_map {
	__u32 size; /* in: sizeof(struct ualink_map) */
	__u32 flags; /* in: must be 0 */
	__u64 attachment; /* in: attachment id */
	__u64 mapping; /* out: mapping id */
};
_Static_assert(sizeof(struct ualink_map) == 24, "struct ualink_map size");

/* UALINK_IOC_UNMAP / UALINK_IOC_DETACH (tenant): name one attachment. */
struct ualink_attachment_arg {
	__u32 size; /* in: sizeof(struct ualink_attachment_arg) */
	__u32 flags; /* in: must be 0 */
	__u64 attachment; /* in: attachment id */
};
_Static_assert(sizeof(struct ualink_attachment_arg) == 16, "struct ualink_attachment_arg size");

/* UALINK_IOC_REVOKE (exporter or TSM): revoke a buffer; it becomes DEAD. */
struct ualink_revoke {
	__u32 size; /* in: sizeof(struct ualink_revoke) */
	__u32 flags; /* in: must be 0 */
	__u8 handle[16]; /* in: buffer handle */
};
_Static_assert(sizeof(struct ualink_revoke) == 24, "struct ualink_revoke size");

/* UALINK_IOC_TENANT_ADD / UALINK_IOC_TENANT_OFFBOARD (TSM): name one tenant. */
struct ualink_tenant {
	__u32 size; /* in: sizeof(struct ualink_tenant) */
	__u32 flags; /* in: must be 0 */
	__u32 tenant; /* in: tenant id (non-zero) */
	__u32 _rsvd0; /* reserved, must be 0 */
};
_Static_assert(sizeof(struct ualink_tenant) == 16, "struct ualink_tenant size");

/* UALINK_IOC_VPOD_CREATE (TSM): form a tenant's vPod from whole accelerators (bitmap of 1024 ids). */
struct ualink_vpod_create {
	__u32 size; /* in: sizeof(struct ualink_vpod_create) */
	__u32 flags; /* in: must be 0 */
	__u32 tenant; /* in: tenant id */
	__u32 _rsvd0; /* reserved, must be 0 */
	__u64 members[16]; /* in: bit (id % 64) of word (id / 64) set for each member accelerator id */
};
_Static_assert(sizeof(struct ualink_vpod_create) == 144, "struct ualink_vpod_create size");

/* UALINK_IOC_WINDOW_CREATE (TSM): carve a memory window of a vPod member for its tenant. */
struct ualink_window_create {
	__u32 size; /* in: sizeof(struct ualink_window_create) */
	__u32 flags; /* in: must be 0 */
	__u32 tenant; /* in: tenant id */
	__u32 accel; /* in: accelerator id */
	__u64 base; /* in: device address of the first byte */
	__u64 len; /* in: length in bytes (non-zero) */
	__u32 window; /* out: window id */
	__u32 _rsvd0; /* reserved, must be 0 */
};
_Static_assert(sizeof(struct ualink_window_create) == 40, "struct ualink_window_create size");

/* UALINK_IOC_TDI_SET (TSM): update the mirror of a TDI's TDISP state and attestation epoch. */
struct ualink_tdi_set {
	__u32 size; /* in: sizeof(struct ualink_tdi_set) */
	__u32 flags; /* in: UALINK_TDI_F_QUARANTINE */
	__u32 accel; /* in: accelerator id */
	__u32 state; /* in: UALINK_TDI_STATE_* */
	__u64 epoch; /* in: attestation epoch */
};
_Static_assert(sizeof(struct ualink_tdi_set) == 24, "struct ualink_tdi_set size");

/* UALINK_IOC_KEYSLOT (TSM): relay a key-slot command; returns the slot pair's metadata (never keys). */
struct ualink_keyslot {
	__u32 size; /* in: sizeof(struct ualink_keyslot) */
	__u32 flags; /* in: must be 0 */
	__u32 accel; /* in: accelerator id */
	__u32 port; /* in: port index */
	__u32 dir; /* in: UALINK_DIR_TX or UALINK_DIR_RX */
	__u32 peer; /* in: peer accelerator id */
	__u32 cmd; /* in: UALINK_KEYSLOT_CMD_* */
	__u32 enabled; /* out: 1 if the direction is enabled */
	__u32 active_state; /* out: UALINK_SLOT_* of the active slot */
	__u32 active_epoch; /* out: key epoch of the active slot */
	__u32 alt_state; /* out: UALINK_SLOT_* of the alternate slot */
	__u32 alt_epoch; /* out: key epoch of the alternate slot */
	__u8 active_fp[48]; /* out: SHA-384 fingerprint of the active key (zero if none) */
	__u8 alt_fp[48]; /* out: SHA-384 fingerprint of the alternate key (zero if none) */
	__u32 fp_present; /* out: bit 0 active fingerprint present, bit 1 alternate fingerprint present */
	__u32 _rsvd0; /* reserved, must be 0 */
};
_Static_assert(sizeof(struct ualink_keyslot) == 152, "struct ualink_keyslot size");

/* UALINK_IOC_ROTATE_KEY (TSM): rotate the grant-signing key; followed by msg_len bytes (COSE_Sign1). */
struct ualink_rotate_key {
	__u32 size; /* in: sizeof(struct ualink_rotate_key) */
	__u32 flags; /* in: must be 0 */
	__u32 msg_len; /* in: bytes of rotation message after this struct */
	__u32 _rsvd0; /* reserved, must be 0 */
};
_Static_assert(sizeof(struct ualink_rotate_key) == 16, "struct ualink_rotate_key size");

/* UALINK_IOC_SPDM_SEND (TSM): send one SPDM message (len bytes after this struct) to a device. */
struct ualink_spdm_send {
	__u32 size; /* in: sizeof(struct ualink_spdm_send) */
	__u32 flags; /* in: must be 0 */
	__u32 accel; /* in: accelerator id */
	__u32 len; /* in: bytes of message after this struct */
};
_Static_assert(sizeof(struct ualink_spdm_send) == 16, "struct ualink_spdm_send size");

/* UALINK_IOC_SPDM_RECV (TSM): receive one SPDM message into the cap bytes after this struct. */
struct ualink_spdm_recv {
	__u32 size; /* in: sizeof(struct ualink_spdm_recv) */
	__u32 flags; /* in: must be 0 */
	__u32 accel; /* in: accelerator id */
	__u32 cap; /* in: bytes available after this struct */
	__u32 len; /* out: bytes received */
	__u32 _rsvd0; /* reserved, must be 0 */
};
_Static_assert(sizeof(struct ualink_spdm_recv) == 24, "struct ualink_spdm_recv size");

/* UALINK_IOC_RAS_POLL (TSM): handle pending hardware fault reports (and optionally audit routes). */
struct ualink_ras_poll {
	__u32 size; /* in: sizeof(struct ualink_ras_poll) */
	__u32 flags; /* in: UALINK_RAS_F_AUDIT_ROUTES */
	__u32 max; /* in: most reports to handle */
	__u32 handled; /* out: reports handled */
};
_Static_assert(sizeof(struct ualink_ras_poll) == 16, "struct ualink_ras_poll size");

#define UALINK_IOC_EXPORT _IOWR(UALINK_IOC_MAGIC, 0x01, struct ualink_export)
#define UALINK_IOC_ATTACH _IOWR(UALINK_IOC_MAGIC, 0x02, struct ualink_attach)
#define UALINK_IOC_MAP _IOWR(UALINK_IOC_MAGIC, 0x03, struct ualink_map)
#define UALINK_IOC_UNMAP _IOW(UALINK_IOC_MAGIC, 0x04, struct ualink_attachment_arg)
#define UALINK_IOC_DETACH _IOW(UALINK_IOC_MAGIC, 0x05, struct ualink_attachment_arg)
#define UALINK_IOC_REVOKE _IOW(UALINK_IOC_MAGIC, 0x06, struct ualink_revoke)
#define UALINK_IOC_TENANT_ADD _IOW(UALINK_IOC_MAGIC, 0x10, struct ualink_tenant) /* TSM only */
#define UALINK_IOC_TENANT_OFFBOARD _IOW(UALINK_IOC_MAGIC, 0x11, struct ualink_tenant) /* TSM only */
#define UALINK_IOC_VPOD_CREATE _IOW(UALINK_IOC_MAGIC, 0x12, struct ualink_vpod_create) /* TSM only */
#define UALINK_IOC_WINDOW_CREATE _IOWR(UALINK_IOC_MAGIC, 0x13, struct ualink_window_create) /* TSM only */
#define UALINK_IOC_TDI_SET _IOW(UALINK_IOC_MAGIC, 0x14, struct ualink_tdi_set) /* TSM only */
#define UALINK_IOC_KEYSLOT _IOWR(UALINK_IOC_MAGIC, 0x15, struct ualink_keyslot) /* TSM only */
#define UALINK_IOC_ROTATE_KEY _IOW(UALINK_IOC_MAGIC, 0x16, struct ualink_rotate_key) /* TSM only */
#define UALINK_IOC_SPDM_SEND _IOW(UALINK_IOC_MAGIC, 0x17, struct ualink_spdm_send) /* TSM only */
#define UALINK_IOC_SPDM_RECV _IOWR(UALINK_IOC_MAGIC, 0x18, struct ualink_spdm_recv) /* TSM only */
#define UALINK_IOC_RAS_POLL _IOWR(UALINK_IOC_MAGIC, 0x19, struct ualink_ras_poll) /* TSM only */

/*
 * Errors (returned as -errno):
 *   EPERM        1
 *   ENOENT       2
 *   EIO          5
 *   ENXIO        6
 *   E2BIG        7
 *   EAGAIN       11
 *   ENOMEM       12
 *   EACCES       13
 *   EFAULT       14
 *   EBUSY        16
 *   EEXIST       17
 *   EXDEV        18
 *   ENODEV       19
 *   EINVAL       22
 *   ENOTTY       25
 *   ENOSPC       28
 *   ERANGE       34
 *   EIDRM        43
 *   ENOLINK      67
 *   EBADMSG      74
 *   EOVERFLOW    75
 *   EOPNOTSUPP   95
 *   ETIMEDOUT    110
 *   EHOSTDOWN    112
 *   EALREADY     114
 *   ESTALE       116
 *   ENOKEY       126
 *   EKEYEXPIRED  127
 *   EKEYREVOKED  128
 *   EKEYREJECTED 129
 */

#endif /* _UAPI_LINUX_UALINK_H */
