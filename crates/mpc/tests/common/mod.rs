//! Helpers shared by the integration tests: the AES execution used as the protocol workload
//! and the RustCrypto reference it is checked against.

use std::sync::Arc;

use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};
use mpc::circuit;
use mpc::{ExecSpec, InputGroup, InputSource, OutputGroup, OutputTo};

/// AES-128: key from garbler 0, plaintext from the evaluator (XOR-shared to the garblers),
/// ciphertext to everyone.
pub fn aes_spec() -> Arc<ExecSpec> {
    Arc::new(
        ExecSpec::new(
            Arc::new(circuit::aes::aes128_circuit()),
            vec![
                InputGroup {
                    width: 128,
                    source: InputSource::Private(0),
                },
                InputGroup {
                    width: 128,
                    source: InputSource::Private(2),
                },
            ],
            vec![OutputGroup {
                width: 128,
                to: OutputTo::All,
            }],
        )
        .unwrap(),
    )
}

/// AES-128 of one block with RustCrypto.
pub fn aes_ref(key: &[u8], pt: &[u8]) -> Vec<u8> {
    let c = aes::Aes128::new(GenericArray::from_slice(key));
    let mut b = GenericArray::clone_from_slice(pt);
    c.encrypt_block(&mut b);
    b.to_vec()
}
