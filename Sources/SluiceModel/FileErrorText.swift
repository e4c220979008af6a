import Foundation

/// `strerror`-style text for a file error ("no such file or directory"), instead of Foundation's domain and code
/// dump; shared by the config loader and the store.
public func describeFileError(_ error: Error) -> String {
    let nsError = error as NSError
    if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        return String(cString: strerror(Int32(underlying.code))).lowercased()
    }
    if nsError.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(nsError.code))).lowercased() }
    switch nsError.code {
    case NSFileWriteNoPermissionError, NSFileReadNoPermissionError: return "permission denied"
    case NSFileNoSuchFileError, NSFileReadNoSuchFileError: return "no such file or directory"
    case NSFileWriteOutOfSpaceError: return "no space left on device"
    default: return nsError.localizedDescription
    }
}
