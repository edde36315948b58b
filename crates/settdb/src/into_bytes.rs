//! [`IntoBytes`]: what SettDB accepts wherever a key or a value goes in.
//!
//! Borrowed input (`&[u8]`, `&str`, `&[u8; N]`, `&String`, `&Vec<u8>`, `&Bytes`, ...) is copied
//! once into a [`Bytes`]; owned input (`Vec<u8>`, `String`, `Box<[u8]>`, `Bytes`) is moved in
//! without a copy. The trait exists because `impl Into<Bytes>` only takes `'static` slices, so
//! `fn put(db: &Db, k: &[u8])` could not pass `k` on.

use std::borrow::Cow;

use bytes::Bytes;

/// A key or a value going into SettDB; see the module doc for the copies made.
///
/// ```
/// # fn main() -> settdb::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let db = settdb::Db::open(settdb::Options::new(dir.path()))?;
/// fn put(db: &settdb::Db, k: &[u8], v: &[u8]) -> settdb::Result<()> {
///     db.update(|t| t.set(k, v))
/// }
/// put(&db, b"slice", b"copied")?;
/// db.update(|t| {
///     t.set("str", String::from("moved"))?;
///     t.set(*b"array", vec![1, 2, 3])?;
///     t.set(&String::from("borrowed"), settdb::Bytes::from_static(b"moved"))
/// })?;
/// assert_eq!(db.get("str")?.as_deref(), Some(&b"moved"[..]));
/// # Ok(()) }
/// ```
pub trait IntoBytes {
    /// The bytes, copied only if they were borrowed.
    fn into_bytes(self) -> Bytes;
}

impl<T: AsRef<[u8]> + ?Sized> IntoBytes for &T {
    fn into_bytes(self) -> Bytes {
        Bytes::copy_from_slice(self.as_ref())
    }
}

impl IntoBytes for Bytes {
    fn into_bytes(self) -> Bytes {
        self
    }
}

impl IntoBytes for Vec<u8> {
    fn into_bytes(self) -> Bytes {
        Bytes::from(self)
    }
}

impl IntoBytes for String {
    fn into_bytes(self) -> Bytes {
        Bytes::from(self)
    }
}

impl IntoBytes for Box<[u8]> {
    fn into_bytes(self) -> Bytes {
        Bytes::from(self)
    }
}

impl IntoBytes for Box<str> {
    fn into_bytes(self) -> Bytes {
        Bytes::from(self.into_boxed_bytes())
    }
}

impl<const N: usize> IntoBytes for [u8; N] {
    fn into_bytes(self) -> Bytes {
        Bytes::copy_from_slice(&self)
    }
}

impl IntoBytes for Cow<'_, [u8]> {
    fn into_bytes(self) -> Bytes {
        match self {
            Cow::Borrowed(b) => Bytes::copy_from_slice(b),
            Cow::Owned(v) => Bytes::from(v),
        }
    }
}

impl IntoBytes for Cow<'_, str> {
    fn into_bytes(self) -> Bytes {
        match self {
            Cow::Borrowed(s) => Bytes::copy_from_slice(s.as_bytes()),
            Cow::Owned(s) => Bytes::from(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_input_is_moved_and_borrowed_input_copied() {
        // Proves the promise of the module doc: owned buffers keep their allocation (same
        // pointer), borrowed ones are copied (a new pointer, same bytes).
        let v = vec![1u8, 2, 3];
        let p = v.as_ptr();
        assert_eq!(v.into_bytes().as_ptr(), p);
        let s = String::from("abc");
        let p = s.as_ptr();
        // `String::into_bytes` (to a Vec) would shadow the trait method.
        assert_eq!(IntoBytes::into_bytes(s).as_ptr(), p);
        let b = Bytes::from(vec![9u8; 4]);
        let p = b.as_ptr();
        assert_eq!(b.into_bytes().as_ptr(), p);
        let boxed: Box<[u8]> = vec![4u8, 5].into_boxed_slice();
        let p = boxed.as_ptr();
        assert_eq!(boxed.into_bytes().as_ptr(), p);
        let cow: Cow<'_, [u8]> = Cow::Owned(vec![7u8; 3]);
        let p = cow.as_ptr();
        assert_eq!(cow.into_bytes().as_ptr(), p);

        let slice: &[u8] = b"xyz";
        let copied = slice.into_bytes();
        assert_ne!(copied.as_ptr(), slice.as_ptr());
        assert_eq!(&copied[..], b"xyz");
        assert_eq!(&"str".into_bytes()[..], b"str");
        assert_eq!(&(*b"arr").into_bytes()[..], b"arr");
        assert_eq!(&(&String::from("s")).into_bytes()[..], b"s");
        assert_eq!(&Cow::Borrowed(&b"cb"[..]).into_bytes()[..], b"cb");
        assert_eq!(&Cow::Borrowed("cs").into_bytes()[..], b"cs");
        assert_eq!(&Cow::<str>::Owned("co".into()).into_bytes()[..], b"co");
        assert_eq!(&IntoBytes::into_bytes(Box::<str>::from("bx"))[..], b"bx");
    }
}
