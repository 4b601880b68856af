// Package outdir writes ringbench's output files (results, summaries,
// reports) so that a folder or a link planted by another user cannot turn a
// root run into a write through someone else's file.
//
// Data flow:
//  1. Prepare makes the results folder if it is missing and checks it: a
//     folder that is not the current user's, or a symbolic link that another
//     user planted, is refused with ErrUnsafe. A link of the user's own (the
//     bench-results/latest link) is resolved to its folder.
//  2. Subdir makes a folder inside it (profiles/, charts/, validate/,
//     ndr/) and refuses a link at its name, whoever owns it.
//  3. WriteFile writes a whole file into a temporary file of the same
//     folder (created exclusively, so it follows no link) and renames it over
//     the target: a link at the target is replaced, never followed, and a
//     reader never sees half a file.
//  4. OpenAppend opens a file that grows record by record with O_NOFOLLOW,
//     so a link at its name is an error rather than a write elsewhere.
package outdir
