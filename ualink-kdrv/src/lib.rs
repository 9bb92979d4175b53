//! ualink-kdrv: the kernel-driver core.
#![no_std]
extern crate alloc;
