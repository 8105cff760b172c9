package storage

// SkeletonFillPage lets tests fill email skeletons in small pages.
var SkeletonFillPage = &skeletonFillPage
