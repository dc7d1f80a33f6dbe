// Anchor for the shared precompiled LibTorch header (see cmake/PerpoModules.cmake).
namespace perpo_pch_anchor {
int anchor = 0;
}
