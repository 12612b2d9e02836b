//! Per-thread scratch buffers for the cookie path.
//!
//! Writing a cookie builds tagged JSON, its base64 and the `Set-Cookie`
//! text; reading one decodes base64 and may inflate. Each of those steps
//! used to allocate a buffer and free it again within the same request.
//! Reusing one buffer per thread and step leaves only the strings handed
//! out, and those are allocated once at their exact size.

use std::cell::RefCell;
use std::thread::LocalKey;

/// Buffers that grew past this are dropped after use, so one large cookie
/// does not pin memory for the thread's lifetime.
const KEPT_CAPACITY: usize = 16 * 1024;

pub(crate) type Buffer<T> = RefCell<T>;

/// A reusable buffer: emptied before each use.
pub(crate) trait Scratch: Default {
    fn clear_for_use(&mut self);
    fn capacity_in_bytes(&self) -> usize;
}

impl Scratch for String {
    fn clear_for_use(&mut self) {
        self.clear();
    }

    fn capacity_in_bytes(&self) -> usize {
        self.capacity()
    }
}

impl Scratch for Vec<u8> {
    fn clear_for_use(&mut self) {
        self.clear();
    }

    fn capacity_in_bytes(&self) -> usize {
        self.capacity()
    }
}

thread_local! {
    /// The `Set-Cookie` header being written.
    pub(crate) static HEADER: Buffer<String> = const { RefCell::new(String::new()) };
    /// A cookie value being written by `CookieCodec::encode`.
    pub(crate) static COOKIE: Buffer<String> = const { RefCell::new(String::new()) };
    /// A session's tagged JSON before it is compressed or encoded.
    pub(crate) static JSON: Buffer<String> = const { RefCell::new(String::new()) };
    /// A session's JSON after zlib, when that is shorter.
    pub(crate) static COMPRESSED: Buffer<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// A cookie's payload after base64 decoding.
    pub(crate) static PAYLOAD: Buffer<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// A compressed payload after inflating.
    pub(crate) static INFLATED: Buffer<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's empty buffer `key`. A nested use of the same
/// buffer (not expected) gets a fresh one instead of a panic.
pub(crate) fn with<T: Scratch, R>(
    key: &'static LocalKey<Buffer<T>>,
    f: impl FnOnce(&mut T) -> R,
) -> R {
    key.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffer) => {
            buffer.clear_for_use();
            let result = f(&mut buffer);
            if buffer.capacity_in_bytes() > KEPT_CAPACITY {
                *buffer = T::default();
            }
            result
        }
        Err(_) => f(&mut T::default()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_start_empty_and_large_ones_are_released() {
        with(&JSON, |json| json.push_str("first"));
        with(&JSON, |json| {
            assert!(json.is_empty());
            json.push_str(&"x".repeat(KEPT_CAPACITY + 1));
        });
        JSON.with(|cell| assert_eq!(cell.borrow().capacity(), 0));
        let nested = with(&JSON, |outer| {
            outer.push_str("outer");
            with(&JSON, |inner| {
                inner.push_str("inner");
                inner.clone()
            })
        });
        assert_eq!(nested, "inner");
    }
}
