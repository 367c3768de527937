//! Runtime of the `reactive` framework. (Being written.)
